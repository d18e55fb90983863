"""The source contract: every input kind gives the same bands and validity, and the size guard."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from rasterio.windows import Window

from terraseg.data.raster import raster_info, read_raster
from terraseg.data.source import ArraySource, check_band_count, open_source
from terraseg.errors import DataError


def _rgba(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (40, 50, 4), dtype=np.uint8)
    rgba[:, :, 3] = 255
    rgba[5:15, 10:20, 3] = 0
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    return path, rgba


def test_rgba_png_is_three_bands_and_alpha_is_the_mask(tmp_path):
    path, rgba = _rgba(tmp_path)
    with open_source(path) as src:
        assert (src.count, src.file_bands, src.width, src.height) == (3, 3, 50, 40)
        pixels, valid = src.read_masked()
    np.testing.assert_array_equal(pixels, rgba[:, :, :3])
    np.testing.assert_array_equal(valid, rgba[:, :, 3] > 0)
    assert raster_info(path).count == 3 and read_raster(path).shape == (40, 50, 3)


def test_grey_alpha_png_is_one_band_everywhere(tmp_path):
    la = np.zeros((20, 30, 2), np.uint8)
    la[:, :, 0] = np.arange(30, dtype=np.uint8)[None, :]
    la[:, :, 1] = 255
    la[:5, :, 1] = 0
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    with open_source(path) as src:
        assert src.count == 1
        pixels, valid = src.read_masked(Window(0, 0, 30, 10))
    assert pixels.shape == (10, 30, 1) and int((~valid).sum()) == 5 * 30
    assert raster_info(path).count == 1 and read_raster(path).shape == (20, 30, 1)


def test_geotiff_nodata_nan_inf_and_internal_mask_become_invalid(tmp_path):
    data = np.ones((3, 32, 32), np.float32)
    data[:, 0, 0] = -9999  # declared nodata in every band
    data[1, 1, 1] = np.nan  # NaN in one band
    data[2, 2, 2] = np.inf
    data[0, 3, 3] = -np.inf
    path = tmp_path / "float.tif"
    with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=3, dtype="float32",
                       crs="EPSG:32640", transform=Affine(10, 0, 0, 0, -10, 0), nodata=-9999) as dst:
        dst.write(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from NaN comparisons
        with open_source(path) as src:
            valid = src.valid()
    bad = {tuple(x) for x in np.argwhere(~valid)}
    assert bad == {(0, 0), (1, 1), (2, 2), (3, 3)}

    masked = tmp_path / "masked.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(masked, "w", driver="GTiff", width=16, height=16, count=1, dtype="uint8") as dst:
            dst.write(np.full((1, 16, 16), 7, np.uint8))
            m = np.full((16, 16), 255, np.uint8)
            m[:4] = 0
            dst.write_mask(m)
    with open_source(masked) as src:
        assert int((~src.valid()).sum()) == 4 * 16


def test_band_selection_is_one_based_and_errors_name_the_file_and_selection(tmp_path):
    data = np.stack([np.full((8, 8), b + 1, np.uint16) for b in range(4)])
    path = tmp_path / "rgbn.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=4, dtype="uint16") as dst:
        dst.write(data)
    with open_source(path, bands="4,3,2") as src:
        assert src.read()[0, 0].tolist() == [4, 3, 2] and src.band_indexes == [4, 3, 2]
    with open_source(path) as src, pytest.raises(DataError, match=r"4 bands but the model expects 3; choose 3"):
        check_band_count(src, 3)
    with pytest.raises(DataError, match=r"asks for band 5 but the image has 4 bands"):
        open_source(path, bands=[1, 2, 5])
    with pytest.raises(DataError, match="start at 1"):
        open_source(path, bands=[0, 1, 2])


def test_array_layouts():
    chw = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    src = ArraySource(chw, layout="chw")
    assert (src.height, src.width, src.count) == (4, 5, 3)
    np.testing.assert_array_equal(src.read(), np.moveaxis(chw, 0, -1))


def test_bomb_png_is_refused_before_allocation(tmp_path):
    # A tiny PNG whose header claims 100,000 x 100,000 px: refused in one line, under a 1 GB memory cap.
    path = tmp_path / "bomb.png"
    _write_bomb(path, 100_000, 100_000)
    assert path.stat().st_size < 10_000
    code = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from terraseg.data.raster import read_raster
        from terraseg.errors import DataError
        try:
            read_raster({str(path)!r})
        except DataError as exc:
            print("REFUSED", exc)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "REFUSED" in done.stdout
    assert "image claims 100000×100000 px, over the limit of 1,000,000,000 px" in done.stdout
    assert "TERRASEG_MAX_PIXELS" in done.stdout


def test_huge_geotiff_streams_by_windows_but_whole_read_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "huge.tif"
    with rasterio.open(path, "w", driver="GTiff", width=40_000, height=40_000, count=1, dtype="uint8",
                       tiled=True, blockxsize=256, blockysize=256, sparse_ok=True) as dst:
        dst.write(np.full((1, 256, 256), 9, np.uint8), window=Window(0, 0, 256, 256))
    assert path.stat().st_size < 5_000_000
    with open_source(path) as src:
        assert src.read(Window(0, 0, 256, 256)).min() == 9
        with pytest.raises(DataError, match="over the limit"):
            src.read()
    monkeypatch.setenv("TERRASEG_MAX_PIXELS", "100")
    with pytest.raises(DataError, match="image claims 50×40 px, over the limit of 100 px"):
        open_source(_rgba(tmp_path)[0])


def _write_bomb(path, width, height):
    """A valid PNG header for a huge image with a tiny IDAT stream (zlib of nothing useful)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
