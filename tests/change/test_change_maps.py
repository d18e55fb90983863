"""``terraseg change``: transitions, ground areas, the change raster as a class map, resampling, polygons."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from change_maps import write_class_map

NAMES = ["water", "vegetation", "building"]


def _pair(seed=0, h=120, w=160):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 3, (h, w)).astype(np.uint8)
    b = a.copy()
    flip = rng.random((h, w)) < 0.2
    b[flip] = rng.integers(0, 3, int(flip.sum()))
    a[:5, :7] = 255  # nodata in A
    b[-3:, -11:] = 255  # nodata in B
    return a, b


def _expected_pixels(a, b, k=3):
    valid = (a < k) & (b < k)
    m = np.zeros((k, k), np.int64)
    np.add.at(m, (a[valid].astype(int), b[valid].astype(int)), 1)
    return m


def _run(*args):
    from terraseg.cli import main

    with pytest.raises(SystemExit) as info:
        main(["change", *map(str, args)])
    return info.value.code


def test_change_in_utm_writes_transitions_and_a_class_map_raster(tmp_path, capsys):
    a, b = _pair()
    t = from_origin(600_000, 2_800_000, 10.0, 10.0)  # UTM 40N (Dubai): 100 m² per pixel
    pa = write_class_map(tmp_path / "a.tif", a, "EPSG:32640", t, NAMES)
    pb = write_class_map(tmp_path / "b.tif", b, "EPSG:32640", t, NAMES)
    out = tmp_path / "out"
    assert _run(pa, pb, "--out", out, "--vector", "gpkg") == 0
    report = json.loads((out / "change.json").read_text())
    expected = _expected_pixels(a, b)
    assert report["transitions"]["pixels"] == expected.tolist()
    np.testing.assert_allclose(report["transitions"]["m2"], expected * 100.0)
    assert report["area_method"] == "planar" and report["resampled"] is False
    for i, row in enumerate(report["per_class"]):
        assert row["gain_pixels"] == expected[:, i].sum() - expected[i, i]
        assert row["loss_pixels"] == expected[i].sum() - expected[i, i]
        assert row["net_ha"] == pytest.approx((expected[:, i].sum() - expected[i].sum()) * 100 / 1e4)
    with rasterio.open(out / "change.tif") as ds:
        codes = ds.read(1)
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.nodata == 255 and ds.crs.to_epsg() == 32640
        names = json.loads(ds.tags()["CLASSES"])
        cmap = ds.colormap(1)
    valid = (a < 3) & (b < 3)
    np.testing.assert_array_equal(codes, np.where(valid, a.astype(int) * 3 + b, 255))
    assert names[1] == "water → vegetation" and names[5] == "vegetation → building" and len(names) == 9
    vegetation = (37, 91, 133)  # the colour write_class_map gives class 1
    assert cmap[1][:3] == vegetation  # water → vegetation: the new class's colour
    assert all(s >= v for s, v in zip(cmap[4][:3], vegetation)) and cmap[4][:3] != vegetation  # persistence: paler
    aux = ET.parse(out / "change.tif.aux.xml").getroot()
    assert [c.text for c in aux.iter("Category")] == names
    qml = (out / "change.qml").read_text()
    assert 'label="vegetation → building"' in qml
    md = (out / "change.md").read_text()
    assert "Gains, losses and net change" in md and "resampled" not in md
    assert (out / "transitions.csv").read_text().startswith("value,from,to,pixels,m2,ha")
    import fiona

    with fiona.open(out / "change.gpkg") as src:
        feats = list(src)
    assert feats and all("→" in f.properties["class_name"] for f in feats)
    assert all(f.properties["class_id"] not in (0, 4, 8) for f in feats)  # no persistence polygons
    assert sum(f.properties["pixels"] for f in feats) == int(valid.sum() - np.trace(expected))


def test_geographic_maps_get_geodesic_areas(tmp_path):
    from pyproj import Geod

    a, b = _pair(seed=3, h=40, w=50)
    res = 0.01
    t = from_origin(55.0, 25.5, res, res)
    pa = write_class_map(tmp_path / "a.tif", a, "EPSG:4326", t, NAMES)
    pb = write_class_map(tmp_path / "b.tif", b, "EPSG:4326", t, NAMES)
    from terraseg.change import compare_maps

    report = compare_maps(pa, pb, tmp_path / "out")
    assert report["area_method"] == "geodesic"
    geod = Geod(ellps="WGS84")
    expected = np.zeros((3, 3))
    for r in range(a.shape[0]):
        top, bottom = 25.5 - r * res, 25.5 - (r + 1) * res
        px_area = abs(geod.polygon_area_perimeter([55.0, 55.0 + res, 55.0 + res, 55.0],
                                                  [top, top, bottom, bottom])[0])
        expected += _expected_pixels(a[r:r + 1], b[r:r + 1]) * px_area
    np.testing.assert_allclose(report["transitions"]["m2"], expected, rtol=1e-6)


def test_map_b_on_another_grid_is_resampled_onto_a_and_said_so(tmp_path):
    a, b = _pair(seed=5, h=60, w=80)
    t = from_origin(600_000, 2_800_000, 10.0, 10.0)
    pa = write_class_map(tmp_path / "a.tif", a, "EPSG:32640", t, NAMES)
    fine = np.repeat(np.repeat(b, 2, axis=0), 2, axis=1)  # the same map at 5 m
    pb = write_class_map(tmp_path / "b_5m.tif", fine, "EPSG:32640", from_origin(600_000, 2_800_000, 5.0, 5.0), NAMES)
    out = tmp_path / "out"
    assert _run(pa, pb, "--out", out) == 0
    report = json.loads((out / "change.json").read_text())
    assert report["resampled"] is True
    assert report["transitions"]["pixels"] == _expected_pixels(a, b).tolist()
    assert "nearest neighbour" in (out / "change.md").read_text()


def test_classes_only_one_map_has_are_added(tmp_path):
    a = np.array([[0, 1], [1, 0]], np.uint8)
    b = np.array([[0, 2], [1, 1]], np.uint8)  # in B's own list: 0 water, 1 vegetation, 2 sand
    t = from_origin(600_000, 2_800_000, 10.0, 10.0)
    pa = write_class_map(tmp_path / "a.tif", a, "EPSG:32640", t, ["water", "vegetation"])
    pb = write_class_map(tmp_path / "b.tif", b, "EPSG:32640", t, ["Water", "vegetation", "sand"])
    from terraseg.change import compare_maps

    report = compare_maps(pa, pb, tmp_path / "out")
    assert report["classes"] == ["water", "vegetation", "sand"]
    assert report["transitions"]["pixels"] == [[1, 1, 0], [0, 1, 1], [0, 0, 0]]


def test_the_change_map_can_be_sampled_like_a_class_map(tmp_path):
    a, b = _pair(seed=7)
    t = from_origin(600_000, 2_800_000, 10.0, 10.0)
    pa = write_class_map(tmp_path / "a.tif", a, "EPSG:32640", t, NAMES)
    pb = write_class_map(tmp_path / "b.tif", b, "EPSG:32640", t, NAMES)
    from terraseg.assess import design_sample
    from terraseg.change import compare_maps

    compare_maps(pa, pb, tmp_path / "out")
    design = design_sample(tmp_path / "out" / "change.tif", tmp_path / "points.gpkg", n=90, min_per_class=5)
    strata = {s["name"]: s["points"] for s in design["strata"] if s["pixels"]}
    assert set(strata) == {f"{x} → {y}" for x in NAMES for y in NAMES}
    assert all(v >= 5 for v in strata.values())


def test_unreadable_map_is_one_error_line(tmp_path, capsys):
    bad = tmp_path / "a.tif"
    bad.write_bytes(b"not a tiff at all")
    assert _run(bad, bad, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "a.tif" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
