"""Images as the app opens them (through the source contract): previews, bands, alpha, ground area."""

from __future__ import annotations

import numpy as np
import pytest

from terraseg.errors import DataError
from terraseg.gui.imaging import open_image


def test_big_geotiff_preview_is_a_decimated_read_with_georeference(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin

    h, w = 1200, 1800
    yy, xx = np.mgrid[0:h, 0:w]
    data = np.stack([(xx % 256), (yy % 256), ((xx + yy) % 256)]).astype(np.uint16) * 16
    path = tmp_path / "big.tif"
    transform = from_origin(300000.0, 2800000.0, 2.0, 2.0)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint16",
                       crs="EPSG:32640", transform=transform, tiled=True) as dst:
        dst.write(data)
    with rasterio.open(path, "r+") as dst:
        dst.build_overviews([2, 4, 8], Resampling.nearest)
    doc = open_image(path, max_side=300)
    assert (doc.width, doc.height, doc.bands, doc.dtype) == (w, h, 3, "uint16")
    assert doc.preview.shape == (200, 300, 3) and doc.preview.dtype == np.uint8
    assert doc.preview_scale == pytest.approx(6.0)
    assert doc.preview.min() == 0 and doc.preview.max() == 255  # 16-bit data stretched for the screen
    assert doc.georeferenced and doc.ground_area_m2() == pytest.approx(w * h * 4.0)


def test_geographic_ground_area_agrees_with_pyproj(tmp_path):
    """Degrees: the image panel's hectares use the area report's earth model; pyproj's ellipsoid agrees."""
    rasterio = pytest.importorskip("rasterio")
    from pyproj import Geod
    from rasterio.transform import from_origin

    h, w, step = 400, 500, 0.001  # about 110 m x 100 m pixels near Dubai
    west, north = 55.1, 25.3
    path = tmp_path / "wgs84.tif"
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint8", crs="EPSG:4326",
                       transform=from_origin(west, north, step, step)) as dst:
        dst.write(np.full((3, h, w), 90, np.uint8))
    doc = open_image(path)
    lons = [west, west + w * step, west + w * step, west]
    lats = [north, north, north - h * step, north - h * step]
    area, _ = Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)
    assert doc.ground_area_m2() == pytest.approx(abs(area), rel=0.005)  # sphere vs ellipsoid


def test_rgba_png_is_three_bands_with_alpha_as_nodata(tmp_path):
    from PIL import Image

    rgba = np.zeros((60, 80, 4), np.uint8)
    rgba[:, :, :3] = 200
    rgba[:, :, 3] = 255
    rgba[:20, :30, 3] = 0  # a transparent corner
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(path)
    doc = open_image(path)
    assert (doc.width, doc.height, doc.bands) == (80, 60, 3)
    assert (doc.preview[:20, :30] == 0).all() and (doc.preview[20:, 30:] == 200).all()
    grey_alpha = tmp_path / "la.png"
    Image.fromarray(rgba[:, :, [0, 3]], mode="LA").save(grey_alpha)
    assert open_image(grey_alpha).bands == 1


def test_big_jpeg_preview_is_decoded_at_reduced_scale(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    arr = np.kron(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8), np.ones((50, 50, 1), np.uint8))
    path = tmp_path / "photo.jpg"
    Image.fromarray(arr).save(path, quality=90)
    doc = open_image(path, max_side=500)
    assert (doc.width, doc.height, doc.bands) == (3000, 2000, 3)
    assert max(doc.preview.shape[:2]) <= 500 and doc.preview.shape[1] >= 370
    assert not doc.georeferenced and doc.ground_area_m2() is None
    # the preview shows the same picture: compare with a plain downscale of the original
    ref = np.asarray(Image.fromarray(arr).resize(doc.preview.shape[1::-1], Image.Resampling.BILINEAR), np.float32)
    assert np.abs(doc.preview.astype(np.float32) - ref).mean() < 12


def test_unreadable_and_missing_images_raise_data_error(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataError, match="bad.jpg"):
        open_image(bad)
    with pytest.raises(DataError, match="not found"):
        open_image(tmp_path / "missing.png")
