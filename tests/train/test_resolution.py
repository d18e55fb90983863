"""The bundle records the training ground sampling distance from the GeoTIFF transforms."""

from __future__ import annotations

import math

import numpy as np
import rasterio
from pyproj import Geod
from rasterio.transform import from_origin

from terraseg.data.spec import load_spec
from terraseg.train.run import training_resolution


def _dataset(root, crs, transforms):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, transform in enumerate(transforms):
        for kind, count in (("images", 3), ("masks", 1)):
            with rasterio.open(root / kind / f"t{i}.tif", "w", driver="GTiff", width=32, height=32, count=count,
                               dtype="uint8", crs=crs, transform=transform) as dst:
                dst.write(np.zeros((count, 32, 32), np.uint8))
    (root / "dataset.yaml").write_text(
        "images: images\nmasks: masks\nbands: 3\nclasses:\n- {name: land, value: 0}\n- {name: water, value: 1}\n")
    return load_spec(root / "dataset.yaml")


def test_utm_pixels_give_their_size(tmp_path):
    spec = _dataset(tmp_path / "utm", "EPSG:32640", [from_origin(500000, 2770000, 0.5, 0.5)] * 3)
    assert math.isclose(training_resolution(spec, spec.labelled()), 0.5, rel_tol=1e-3)


def test_degree_pixels_are_measured_on_the_ellipsoid(tmp_path):
    deg = 1e-5
    spec = _dataset(tmp_path / "geo", "EPSG:4326", [from_origin(55.0, 25.0 + 32 * deg, deg, deg)])
    # independent: the geodesic area of the whole 32 x 32 px scene on WGS84, per pixel
    lon = [55.0, 55.0 + 32 * deg, 55.0 + 32 * deg, 55.0]
    lat = [25.0, 25.0, 25.0 + 32 * deg, 25.0 + 32 * deg]
    area, _ = Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)
    expected = math.sqrt(abs(area) / (32 * 32))
    assert math.isclose(training_resolution(spec, spec.labelled()), expected, rel_tol=2e-3)


def test_plain_pictures_have_no_ground_resolution(sample_dataset):
    spec = load_spec(sample_dataset)
    assert training_resolution(spec, spec.labelled()) is None
