"""Image previews for the app: decimated reads of big rasters, display stretch, nearest downscale."""

from __future__ import annotations

import numpy as np
import pytest

from terraseg.errors import DataError
from terraseg.gui.imaging import display_rgb, downscale_nearest, open_image, read_full


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
    assert doc.preview.shape == (200, 300, 3)
    assert doc.preview_scale == pytest.approx(6.0)
    assert doc.georeferenced and doc.pixel_area_m2() == pytest.approx(4.0)
    # nearest decimation keeps real pixel values of the full image
    assert set(np.unique(doc.preview[:, :, 0])) <= set(np.unique(data[0]))
    rgb = display_rgb(doc.preview)
    assert rgb.dtype == np.uint8 and rgb.shape == (200, 300, 3) and rgb.max() == 255 and rgb.min() == 0
    full = read_full(doc)
    np.testing.assert_array_equal(full, np.moveaxis(data, 0, -1))


def test_big_jpeg_preview_is_decoded_at_reduced_scale(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    arr = np.kron(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8), np.ones((50, 50, 1), np.uint8))
    path = tmp_path / "photo.jpg"
    Image.fromarray(arr).save(path, quality=90)
    doc = open_image(path, max_side=500)
    assert (doc.width, doc.height, doc.bands) == (3000, 2000, 3)
    assert max(doc.preview.shape[:2]) <= 500 and doc.preview.shape[1] >= 370
    assert not doc.georeferenced and doc.pixel_area_m2() is None
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


def test_display_rgb_bands_and_nodata():
    one = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    rgb = display_rgb(one)
    assert rgb.shape == (3, 4, 3) and (rgb[:, :, 0] == rgb[:, :, 2]).all()
    f = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10, 1).repeat(4, axis=2)
    f[0, 0] = -9999
    out = display_rgb(f, nodata=-9999)
    assert out.shape == (10, 10, 3) and (out[0, 0] == 0).all() and out.max() == 255


def test_downscale_nearest_keeps_class_values():
    cls = np.repeat(np.repeat(np.arange(6, dtype=np.uint8).reshape(2, 3), 10, axis=0), 10, axis=1)
    small = downscale_nearest(cls, (4, 6))
    np.testing.assert_array_equal(small, np.repeat(np.repeat(np.arange(6).reshape(2, 3), 2, 0), 2, 1))
