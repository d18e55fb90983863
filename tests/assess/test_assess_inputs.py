"""``terraseg assess areas`` on awkward inputs: every bad point file is one error line, bad points are
counted warnings, points in another CRS are reprojected, geographic maps get geodesic areas, and a
full-coverage reference raster gives census figures."""

from __future__ import annotations

import json

import fiona
import numpy as np
import pytest
from rasterio.transform import from_origin

from assess_maps import write_class_map

NAMES = ["water", "forest", "urban"]
ORIGIN = (500_000.0, 4_000_000.0)
PIXEL = 30.0


@pytest.fixture()
def scene(tmp_path):
    h, w = 60, 90
    classes = np.zeros((h, w), np.uint8)
    classes[:, 30:] = 1
    classes[:, 70:] = 2
    classes[:4, :4] = 255  # nodata corner
    path = write_class_map(tmp_path / "map.tif", classes, "EPSG:32631", from_origin(*ORIGIN, PIXEL, PIXEL), NAMES)
    rng = np.random.default_rng(1)
    pts = []
    for k, (c0, c1) in enumerate([(4, 30), (30, 70), (70, 90)]):
        for _ in range(12):
            r, c = int(rng.integers(4, h)), int(rng.integers(c0, c1))
            label = NAMES[k] if rng.random() < 0.8 else NAMES[(k + 1) % 3]
            pts.append((ORIGIN[0] + (c + 0.5) * PIXEL, ORIGIN[1] - (r + 0.5) * PIXEL, label))
    return path, classes, pts


def _csv(path, pts, header="x,y,reference"):
    path.write_text(header + "\n" + "".join(f"{x},{y},{lab}\n" for x, y, lab in pts))
    return path


def _run(*args):
    from terraseg.cli import main

    with pytest.raises(SystemExit) as info:
        main(["assess", "areas", *map(str, args)])
    return info.value.code


def _one_error(capsys, *words):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error:") and "Traceback" not in err
    flat = err.replace("\n", "")
    for w in words:
        assert w in flat, err
    return flat


def _warnings(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]


@pytest.mark.parametrize("name, content, words", [
    ("broken.gpkg", b"SQLite format 3\x00 but then nothing", ["broken.gpkg", "cannot be read"]),
    ("broken.geojson", b'{"type": "FeatureCollection", "features": [{"type": "Fea', ["broken.geojson"]),
    ("nox.csv", b"lon,lat,reference\n1,2,water\n", ["nox.csv", "no 'x' column"]),
    ("text.csv", b"x,y,reference\n500015,abc,water\n", ["text.csv", "row 2", "not a number"]),
    ("nan.csv", b"x,y,reference\n500015,nan,water\n", ["nan.csv", "row 2", "not a finite"]),
    ("inf.csv", b"x,y,reference\ninf,3999985,water\n", ["inf.csv", "not a finite"]),
    ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00", ["binary.csv"]),
    ("noref.csv", b"x,y,label\n500015,3999985,water\n", ["noref.csv", "no 'reference' column"]),
    ("points.shp.zip", b"PK", ["unknown point file type"]),
])
def test_malformed_point_files_are_one_error_line(scene, tmp_path, capsys, name, content, words):
    path, _, _ = scene
    bad = tmp_path / name
    bad.write_bytes(content)
    out = tmp_path / "out"
    assert _run(path, bad, "--out", out) == 2
    _one_error(capsys, *words)
    assert not out.exists()


def test_a_huge_point_file_is_refused_before_it_is_read(scene, tmp_path, capsys, monkeypatch):
    from terraseg.assess import points

    path, _, pts = scene
    monkeypatch.setattr(points, "MAX_FILE_BYTES", 1000)
    big = _csv(tmp_path / "big.csv", pts * 20)
    assert _run(path, big, "--out", tmp_path / "out") == 2
    _one_error(capsys, "big.csv", "MiB")
    monkeypatch.setattr(points, "MAX_FILE_BYTES", 1 << 30)
    monkeypatch.setattr(points, "MAX_POINTS", 100)
    assert _run(path, big, "--out", tmp_path / "out") == 2
    _one_error(capsys, "more than 100 points")


def test_a_stratum_with_fewer_than_2_points_is_one_error_line(scene, tmp_path, capsys):
    path, _, pts = scene
    few = [p for p in pts if p[0] < ORIGIN[0] + 70 * PIXEL] + [p for p in pts if p[0] > ORIGIN[0] + 70 * PIXEL][:1]
    assert _run(path, _csv(tmp_path / "few.csv", few), "--out", tmp_path / "out") == 2
    _one_error(capsys, "'urban' has 1", "at least 2")


def test_bad_points_are_skipped_with_one_counted_warning_each(scene, tmp_path, capsys):
    path, classes, pts = scene
    bad = [(ORIGIN[0] - 100, ORIGIN[1] - 15, "water"),  # outside (west)
           (ORIGIN[0] + 15, ORIGIN[1] + 5000, "water"),  # outside (north)
           (ORIGIN[0] + 45, ORIGIN[1] - 45, "water"),  # on the nodata corner
           (pts[0][0], pts[0][1], ""),  # empty label
           (pts[1][0], pts[1][1], "lava"), (pts[2][0], pts[2][1], "lava"), (pts[3][0], pts[3][1], "7")]
    out = tmp_path / "out"
    assert _run(path, _csv(tmp_path / "p.csv", pts + bad), "--out", out) == 0
    warns = _warnings(capsys)
    assert any("2 point(s) lie outside the map" in w for w in warns)
    assert any("1 point(s) lie on nodata" in w for w in warns)
    assert any("1 point(s) have an empty 'reference'" in w for w in warns)
    assert any("3 point(s) have a 'reference' that names no class" in w and "'lava' x2" in w for w in warns)
    result = json.loads((out / "assessment.json").read_text())
    assert result["points_used"] == len(pts)
    assert result["points_skipped"] == {"outside_map": 2, "on_nodata": 1, "empty_reference": 1, "unknown_label": 3,
                                        "no_geometry": 0}
    assert "Warnings" in (out / "assessment.md").read_text()
    # the error matrix is the points' own (map class under each point vs label), counted independently
    expected = np.zeros((3, 3), int)
    for x, y, lab in pts:
        r, c = int((ORIGIN[1] - y) // PIXEL), int((x - ORIGIN[0]) // PIXEL)
        expected[classes[r, c], NAMES.index(lab)] += 1
    assert result["error_matrix"]["counts"] == expected.tolist()


def test_points_in_another_crs_are_reprojected_and_said_so(scene, tmp_path, capsys):
    from pyproj import Transformer

    path, _, pts = scene
    reference = _run(path, _csv(tmp_path / "utm.csv", pts), "--out", tmp_path / "utm")
    assert reference == 0
    capsys.readouterr()
    to_ll = Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)
    geojson = tmp_path / "points.geojson"
    with fiona.open(geojson, "w", driver="GeoJSON", crs="EPSG:4326",
                    schema={"geometry": "Point", "properties": {"reference": "str"}}) as dst:
        for x, y, lab in pts:
            dst.write({"geometry": {"type": "Point", "coordinates": to_ll.transform(x, y)},
                       "properties": {"reference": lab}})
    assert _run(path, geojson, "--out", tmp_path / "ll") == 0
    warns = _warnings(capsys)
    assert any(f"{len(pts)} points reprojected from EPSG:4326 to the map's CRS EPSG:32631" in w for w in warns)
    a = json.loads((tmp_path / "utm" / "assessment.json").read_text())
    b = json.loads((tmp_path / "ll" / "assessment.json").read_text())
    assert a["error_matrix"] == b["error_matrix"] and a["classes"] == b["classes"]


def test_geographic_map_areas_are_geodesic(tmp_path):
    from pyproj import Geod

    from terraseg.assess import estimate_areas

    h, w, res = 40, 50, 0.02
    classes = np.zeros((h, w), np.uint8)
    classes[:, 25:] = 1
    path = write_class_map(tmp_path / "ll.tif", classes, "EPSG:4326", from_origin(10.0, 60.0, res, res),
                           ["water", "forest"])
    pts = [(10.0 + (c + 0.5) * res, 60.0 - (r + 0.5) * res, "water" if c < 25 else "forest")
           for r in range(0, h, 8) for c in range(3, w, 10)]
    result = estimate_areas(path, _csv(tmp_path / "p.csv", pts))
    geod = Geod(ellps="WGS84")
    # each row of 25 pixels as one polygon whose top and bottom follow the parallels (densified edges)
    edge = np.linspace(10.0, 10.0 + res * 25, 200)
    rows = [abs(geod.polygon_area_perimeter(np.concatenate([edge, edge[::-1]]),
                                            np.r_[np.full(200, 60.0 - r * res), np.full(200, 60.0 - (r + 1) * res)])[0])
            for r in range(h)]
    assert result["area_method"] == "geodesic"
    for row in result["classes"]:
        assert row["map_area_m2"] == pytest.approx(sum(rows), rel=1e-5)
        assert row["users_accuracy"] == 1.0 and row["area_m2"] == pytest.approx(sum(rows), rel=1e-5)


def test_a_full_coverage_reference_raster_gives_census_figures(scene, tmp_path):
    path, classes, _ = scene
    truth = classes.copy()
    truth[10:20, 25:35] = 2  # 100 px: 50 mapped water, 50 mapped forest, truly urban
    ref = write_class_map(tmp_path / "truth.tif", truth, "EPSG:32631", from_origin(*ORIGIN, PIXEL, PIXEL), NAMES)
    out = tmp_path / "out"
    assert _run(path, ref, "--out", out) == 0
    result = json.loads((out / "assessment.json").read_text())
    assert result["method"] == "census" and result["overall_accuracy_ci95"] is None
    valid = classes < 3
    expected = np.zeros((3, 3), int)
    np.add.at(expected, (classes[valid], truth[valid]), 1)
    assert result["error_matrix"]["counts"] == expected.tolist()
    assert result["overall_accuracy"] == pytest.approx(np.trace(expected) / expected.sum())
    for j, row in enumerate(result["classes"]):
        assert row["area_m2"] == pytest.approx(expected[:, j].sum() * PIXEL ** 2)
        assert row["users_accuracy"] == pytest.approx(expected[j, j] / expected[j].sum())
        assert row["producers_accuracy"] == pytest.approx(expected[j, j] / expected[:, j].sum())
        assert "area_ci95_m2" not in row


def test_web_mercator_map_areas_are_ground_areas_not_planar(tmp_path):
    from pyproj import Geod, Transformer

    from terraseg.assess import estimate_areas

    to_ll = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    x0, y0 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(13.4, 52.5)  # Berlin
    h, w, res = 30, 40, 50.0
    classes = np.zeros((h, w), np.uint8)
    classes[:, 20:] = 1
    path = write_class_map(tmp_path / "merc.tif", classes, "EPSG:3857", from_origin(x0, y0, res, res),
                           ["water", "forest"])
    pts = [(x0 + (c + 0.5) * res, y0 - (r + 0.5) * res, "water" if c < 20 else "forest")
           for r in range(0, h, 6) for c in range(1, w, 8)]
    result = estimate_areas(path, _csv(tmp_path / "p.csv", pts))
    geod = Geod(ellps="WGS84")
    total = 0.0
    for r in range(h):  # rows of Web Mercator are parallels: the ground area of 20 pixels of each row
        xs = np.linspace(x0, x0 + 20 * res, 50)
        lon, top = to_ll.transform(xs, np.full(50, y0 - r * res))
        _, bottom = to_ll.transform(xs, np.full(50, y0 - (r + 1) * res))
        total += abs(geod.polygon_area_perimeter(np.r_[lon, lon[::-1]], np.r_[top, bottom[::-1]])[0])
    assert result["area_method"] == "geodesic"
    water = result["classes"][0]
    assert water["map_area_m2"] == pytest.approx(total, rel=1e-5)
    assert 20 * h * res ** 2 / water["map_area_m2"] > 2.5  # planar Web Mercator m² would be 2.7x too large
