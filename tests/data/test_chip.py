from __future__ import annotations

import numpy as np
import rasterio
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from terraseg.data.chip import chip_dataset, chip_positions
from terraseg.data.spec import load_spec

from .conftest import make_geotiff_set


def test_chip_positions_cover_the_image():
    assert chip_positions(100, 40, 40) == [0, 40, 60]
    assert chip_positions(100, 40, 30) == [0, 30, 60]
    assert chip_positions(30, 40, 40) == [0]


def test_geotiff_chips_keep_georeference_and_content(tmp_path):
    yaml = make_geotiff_set(tmp_path / "g", n=2, size=(50, 70), bands=4, coord_pattern=True)
    spec = load_spec(yaml)
    report = chip_dataset(spec, tmp_path / "chips", size=32, stride=24, min_valid=0.0, progress=False)
    assert report.chips == 2 * len(chip_positions(50, 32, 24)) * len(chip_positions(70, 32, 24))
    chip = next(p for p in report.written if p.name == "scene_1_r00018_c00024.tif")
    src = spec.items()[1].image
    win = Window(24, 18, 32, 32)
    with rasterio.open(src) as a, rasterio.open(chip) as c:
        assert c.crs == a.crs
        assert c.transform == window_transform(win, a.transform)
        assert np.array_equal(c.read(), a.read(window=win))
    cspec = load_spec(report.yaml_path)
    assert cspec.bands == 4 and cspec.class_names == spec.class_names and len(cspec.labelled()) == report.chips
    key = next(s for s in cspec.items() if s.name == "scene_1_r00018_c00024")
    mask, _ = cspec.read_mask(key)
    rr, cc = np.mgrid[18:50, 24:56]
    assert np.array_equal(mask, (rr + cc) % 3)


def test_mostly_ignore_chips_are_skipped(tmp_path):
    yaml = make_geotiff_set(tmp_path / "g", n=1, size=(64, 64), bands=1, dtype="uint8")
    spec = load_spec(yaml)
    m = spec.items()[0].mask
    with rasterio.open(m, "r+") as ds:
        a = ds.read()
        a[:, :, :40] = 200  # unknown value -> ignore in the left 40 columns
        ds.write(a)
    report = chip_dataset(spec, tmp_path / "c", size=32, min_valid=0.5, progress=False)
    assert (report.chips, report.skipped) == (2, 2)  # left column of chips is 100 % ignore
    assert all("_c00032" in p.name for p in report.written)
