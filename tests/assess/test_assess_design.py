"""``terraseg assess design``: stratified random sample, sample size, allocation, determinism, QGIS style."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import fiona
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from assess_maps import write_class_map

NAMES = ["water", "forest", "crops", "urban"]


@pytest.fixture()
def class_map(tmp_path):
    h, w = 300, 400
    classes = np.full((h, w), 2, np.uint8)  # crops: most of the map
    classes[:100, :] = 1  # forest
    classes[100:110, :40] = 0  # water: 400 px, rare
    classes[200:230, 300:] = 3  # urban
    classes[290:, :] = 255  # nodata strip
    path = write_class_map(tmp_path / "map.tif", classes, "EPSG:32633", from_origin(400_000, 5_500_000, 20, 20),
                           NAMES)
    return path, classes


def _run(*args):
    from terraseg.cli import main

    with pytest.raises(SystemExit) as info:
        main(["assess", "design", *map(str, args)])
    return info.value.code


def _read(path):
    with fiona.open(path) as src:
        return [(f.geometry.coordinates, dict(f.properties)) for f in src], src.crs


def test_sample_is_stratified_at_pixel_centres_with_the_minimum_per_class(class_map, tmp_path):
    path, classes = class_map
    out = tmp_path / "points.gpkg"
    assert _run(path, "--out", out, "--n", 300, "--min-per-class", 30, "--seed", 7) == 0
    feats, crs = _read(out)
    assert crs.to_epsg() == 32633 and len(feats) == 300
    counts = {n: 0 for n in NAMES}
    with rasterio.open(path) as ds:
        for (x, y), props in feats:
            col, row = (x - 400_000) / 20 - 0.5, (5_500_000 - y) / 20 - 0.5
            assert col == int(col) and row == int(row)  # pixel centres
            assert NAMES[classes[int(row), int(col)]] == props["map_class"]
            assert props["reference"] is None
            counts[props["map_class"]] += 1
        assert ds.crs.to_epsg() == 32633
    assert sorted(p["id"] for _, p in feats) == list(range(1, 301))
    assert len({c for c, _ in feats}) == 300  # distinct pixels
    assert counts["water"] == 30 and counts["urban"] == 30  # rare classes: the minimum
    # the 240 others in proportion to area among the two large classes
    forest, crops = (classes == 1).sum(), (classes == 2).sum()
    assert abs(counts["forest"] - 240 * forest / (forest + crops)) <= 1
    assert counts["forest"] + counts["crops"] == 240
    style = ET.parse(out.with_suffix(".qml")).getroot()
    field = style.find("fieldConfiguration/field")
    assert field.get("name") == "reference" and field.find("editWidget").get("type") == "ValueMap"
    assert [o.get("value") for o in field.iter("Option") if o.get("type") == "QString"] == NAMES


def test_same_seed_same_points_other_seed_other_points(class_map, tmp_path):
    path, _ = class_map
    for name, seed in (("a.gpkg", 1), ("b.gpkg", 1), ("c.gpkg", 2)):
        assert _run(path, "--out", tmp_path / name, "--n", 200, "--min-per-class", 20, "--seed", seed) == 0
    a, b, c = (_read(tmp_path / n)[0] for n in ("a.gpkg", "b.gpkg", "c.gpkg"))
    assert a == b and a != c
    assert (tmp_path / "a.gpkg").read_bytes() == (tmp_path / "b.gpkg").read_bytes()


def test_sample_size_from_target_standard_error(class_map, tmp_path):
    from terraseg.assess import design_sample

    path, classes = class_map
    design = design_sample(path, tmp_path / "p.gpkg", target_se=0.02, expected_ua={"water": 0.6, "urban": 0.7},
                           min_per_class=10)
    # eq. 13 of Olofsson et al. (2014) written out: n = (sum W_i S_i / S(O))², S_i = sqrt(U (1 - U))
    px = np.array([(classes == i).sum() for i in range(4)], float)
    w = px / px.sum()
    u = np.array([0.6, 0.8, 0.8, 0.7])
    expected = math.ceil((np.sum(w * np.sqrt(u * (1 - u))) / 0.02) ** 2)
    assert design["n"] == expected and design["chosen_by"] == "target_se"
    assert len(_read(tmp_path / "p.gpkg")[0]) == expected


def test_csv_design_and_a_map_without_class_names(tmp_path):
    classes = np.zeros((50, 60), np.uint8)
    classes[:, 30:] = 4
    path = write_class_map(tmp_path / "plain.tif", classes, "EPSG:32633", from_origin(0, 100_000, 10, 10))
    out = tmp_path / "points.csv"
    assert _run(path, "--out", out, "--n", 20, "--min-per-class", 10) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "id,x,y,map_class,reference" and len(lines) == 21
    assert {line.split(",")[3] for line in lines[1:]} == {"0", "4"}


@pytest.mark.parametrize("args, words", [
    (["--n", "10", "--target-se", "0.01"], "either --n or --target-se"),
    (["--expected-ua", "lava=0.9"], "no class 'lava'"),
    (["--expected-ua", "water=1.5"], "between 0 and 1"),
    (["--target-se", "2"], "--target-se"),
])
def test_bad_design_options_are_one_error_line(class_map, tmp_path, capsys, args, words):
    path, _ = class_map
    assert _run(path, "--out", tmp_path / "p.gpkg", *args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and words in err.replace("\n", "")
    assert not (tmp_path / "p.gpkg").exists()
