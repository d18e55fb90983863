"""GIS inputs end to end: nodata of every kind, band selection, ground resolution, remote rasters, QGIS files."""

from __future__ import annotations

import json
import threading
import warnings
import xml.etree.ElementTree as ET
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from affine import Affine
from predict_helpers import BandClassBackend, PixelBackend, make_meta, position_image, write_geotiff

from terraseg.errors import DataError
from terraseg.predict import predict_array, predict_file


def _bands_image(h, w, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------ nodata


def test_nan_inf_and_declared_nodata_stay_nodata_in_every_output(tmp_path):
    import fiona
    from shapely.geometry import shape

    h, w = 90, 100
    image = np.zeros((h, w, 3), np.float32)
    image[:, 50:, 0] = 3.0  # class 3 on the east half, class 0 on the west
    image[0:10, 0:10, 1] = np.nan
    image[0:10, 60:70, 2] = np.inf
    image[40:50, 0:10, 0] = -np.inf
    image[80:90, 90:100] = -9999.0  # declared nodata in every band
    src = write_geotiff(tmp_path / "holes.tif", image, nodata=-9999.0,
                        transform=Affine(1.0, 0, 500000.0, 0, -1.0, 2800000.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning / NotGeoreferencedWarning reaches the user
        out = predict_file(BandClassBackend(make_meta(tile_size=64)), src, tmp_path / "out", vector="gpkg")
    holes = np.zeros((h, w), bool)
    holes[0:10, 0:10] = holes[0:10, 60:70] = holes[40:50, 0:10] = holes[80:90, 90:100] = True
    with rasterio.open(out["classes"]) as ds:
        classes = ds.read(1)
        assert ds.nodata == 255
    assert (classes[holes] == 255).all() and set(np.unique(classes[~holes])) == {0, 3}
    with rasterio.open(out["color"]) as ds:
        alpha = ds.read(4)
    assert (alpha[holes] == 0).all() and (alpha[~holes] == 255).all()
    report = json.loads(out["areas_json"].read_text())
    assert report["nodata_pixels"] == holes.sum() == 400
    assert report["classes"][0]["pixels"] == (~holes[:, :50]).sum()
    assert report["total_m2"] == pytest.approx((~holes).sum() * 1.0)
    with fiona.open(out["vector"]) as layer:
        covered = sum(shape(f["geometry"]).area for f in layer)
    assert covered == pytest.approx((~holes).sum() * 1.0)


def test_all_nan_scene_is_all_nodata_not_one_class(tmp_path):
    image = np.full((40, 50, 3), np.nan, np.float32)
    src = write_geotiff(tmp_path / "empty.tif", image)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = predict_file(BandClassBackend(make_meta(tile_size=32)), src, tmp_path / "out")
    report = json.loads(out["areas_json"].read_text())
    assert report["classified_pixels"] == 0 and report["nodata_pixels"] == 2000
    assert all(r["percent"] == 0.0 and r["pixels"] == 0 for r in report["classes"])
    with rasterio.open(out["classes"]) as ds:
        assert (ds.read(1) == 255).all()


# ------------------------------------------------------------------------------------------ QGIS files


def test_prediction_writes_a_cog_with_category_names_and_a_qml(tmp_path):
    src = write_geotiff(tmp_path / "scene.tif", _bands_image(300, 280))
    backend = PixelBackend(make_meta(tile_size=64))
    out = predict_file(backend, src, tmp_path / "out", overlay=False, areas=False)
    assert out["classes_aux"].name == "scene_classes.tif.aux.xml" and out["classes_qml"].name == "scene_classes.qml"
    with rasterio.open(out["classes"]) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and ds.overviews(1)
    rasterio.shutil.copy(str(out["classes"]), str(tmp_path / "check.vrt"), driver="VRT")  # what GDAL reads
    band = ET.parse(tmp_path / "check.vrt").getroot().find("VRTRasterBand")
    assert [c.text for c in band.find("CategoryNames")] == backend.meta.classes
    labels = [e.get("label") for e in ET.parse(out["classes_qml"]).getroot().iter("paletteEntry")]
    assert labels == backend.meta.classes


# ------------------------------------------------------------------------------------------ bands


def test_rgb_nir_geotiff_predicts_with_an_rgb_model_by_band_selection(tmp_path):
    rgb = _bands_image(70, 80).astype(np.uint16) * 40  # 16-bit, as RGB+NIR products are
    nir = np.full((70, 80, 1), 7, np.uint16)
    src = write_geotiff(tmp_path / "rgbn.tif", np.concatenate([rgb[:, :, ::-1], nir], axis=2))  # B, G, R, NIR
    backend = PixelBackend(make_meta(tile_size=32))
    with pytest.raises(DataError, match=r"rgbn.tif.*4 bands but the model expects 3.*--bands"):
        predict_file(backend, src, tmp_path / "out")
    out = predict_file(backend, src, tmp_path / "out", bands=[3, 2, 1], overlay=False)
    with rasterio.open(out["classes"]) as ds:
        np.testing.assert_array_equal(ds.read(1), predict_array(backend, rgb, tile_size=32).classes)
    with pytest.raises(DataError, match=r"band 5 but the image has 4 bands"):
        predict_file(backend, src, tmp_path / "out2", bands=[5, 1, 2])


def test_cli_bands_option(tmp_path, tiny_bundle):
    from terraseg.cli import main

    rgbn = np.concatenate([_bands_image(64, 64), np.zeros((64, 64, 1), np.uint8)], axis=2).astype(np.uint16)
    src = write_geotiff(tmp_path / "rgbn.tif", rgbn)
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(tiny_bundle), str(src), "--out", str(tmp_path / "out"), "--bands", "1,2,3",
              "--no-overlay"])
    assert exc.value.code in (0, None)
    with rasterio.open(tmp_path / "out" / "rgbn_classes.tif") as ds:
        assert ds.count == 1 and ds.shape == (64, 64)


# ------------------------------------------------------------------------------------------ resolution


def test_resolution_mismatch_warns_and_resample_predicts_at_the_model_resolution(tmp_path):
    meta = make_meta(tile_size=32)
    meta.resolution = 1.0
    image = np.zeros((128, 160, 3), np.float32)
    image[:, 80:, 0] = 2.0
    image[64:, :, 0] += 1.0
    transform = Affine(0.5, 0, 500000.0, 0, -0.5, 2800000.0)  # 0.5 m pixels for a 1 m model
    src = write_geotiff(tmp_path / "fine.tif", image, transform=transform)

    class Counting(BandClassBackend):
        pixels = 0

        def __call__(self, batch):
            Counting.pixels += batch.shape[0] * batch.shape[2] * batch.shape[3]
            return super().__call__(batch)

    with pytest.warns(UserWarning, match=r"0.5 m on the ground but the model was trained on 1 m"):
        direct = predict_file(Counting(meta), src, tmp_path / "direct", overlay=False)
    direct_pixels, Counting.pixels = Counting.pixels, 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = predict_file(Counting(meta), src, tmp_path / "resampled", overlay=False, resample=True)
    assert Counting.pixels < direct_pixels / 2  # the model saw the scene at half the pixels per axis
    with rasterio.open(out["classes"]) as ds, rasterio.open(direct["classes"]) as ref:
        assert ds.transform == transform and ds.shape == (128, 160)
        agree = (ds.read(1) == ref.read(1)).mean()
    assert agree > 0.97  # block edges may move by a pixel
    report = json.loads(out["areas_json"].read_text())
    assert report["total_m2"] == pytest.approx(128 * 160 * 0.25)
    # a scene at the model's resolution (within 25 %) gives no warning
    near = write_geotiff(tmp_path / "near.tif", image, transform=Affine(1.1, 0, 500000.0, 0, -1.1, 2800000.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict_file(BandClassBackend(meta), near, tmp_path / "near", overlay=False)


# ------------------------------------------------------------------------------------------ remote


class _RangeHandler(SimpleHTTPRequestHandler):
    """Static files with HTTP Range support; counts the body bytes it sends."""

    sent = 0

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        path = self.translate_path(self.path)
        try:
            data = open(path, "rb").read()
        except OSError:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            first, _, last = rng[6:].split(",")[0].partition("-")
            start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
            body = data[start:end + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        type(self).sent += len(body)

    def do_HEAD(self):  # noqa: N802
        path = self.translate_path(self.path)
        try:
            size = len(open(path, "rb").read())
        except OSError:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(size))
        self.end_headers()


@pytest.fixture
def http_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    folder = tmp_path / "www"
    folder.mkdir()
    handler = type("Handler", (_RangeHandler,), {"sent": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_remote_cog_predicts_like_the_local_file_and_reads_by_windows(tmp_path, http_folder):
    from rasterio.windows import Window

    from terraseg.data.source import open_source
    from terraseg.predict.outputs import to_cog

    folder, base, handler = http_folder
    # noisy float32 pixels hardly compress: a 9 MB file
    image = position_image(768, 1024) + np.random.default_rng(0).random((768, 1024, 3), np.float32)
    local = folder / "scene.tif"
    to_cog(write_geotiff(tmp_path / "tiled.tif", image), local, resampling="AVERAGE")
    backend = PixelBackend(make_meta(tile_size=64))
    url = f"{base}/scene.tif"
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
        with open_source(url) as src:
            window = src.read(Window(0, 0, 64, 64))
        small = handler.sent
        assert small < local.stat().st_size / 10  # the header and one 256 x 256 block, not the file
        np.testing.assert_array_equal(window, image[:64, :64])
        remote = predict_file(backend, url, tmp_path / "remote", overlay=False)
    ref = predict_file(backend, local, tmp_path / "local", overlay=False)
    assert remote["classes"].name == "scene_classes.tif"
    with rasterio.open(remote["classes"]) as a, rasterio.open(ref["classes"]) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
        assert a.transform == b.transform and a.crs == b.crs


@pytest.mark.parametrize("text", ["/vsicurl/https://example.invalid/a.tif", "https://example.invalid/a.tif?x=1",
                                  "/vsis3/bucket/a.tif", "/vsigs/bucket/dir/a.tif"])
def test_remote_names_reach_gdal_untouched(tmp_path, text):
    from terraseg.data.source import is_remote, open_source
    from terraseg.predict.options import output_paths

    assert is_remote(text)
    assert output_paths(text, tmp_path)["classes"].name == "a_classes.tif"
    # GDAL gets the text as it is (the error comes from GDAL's network layer, not from "file not found")
    with pytest.raises(DataError) as exc:
        with rasterio.Env(GDAL_HTTP_TIMEOUT=1, GDAL_HTTP_MAX_RETRY=0, AWS_NO_SIGN_REQUEST="YES",
                          GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
            open_source(text)
    assert "file not found" not in str(exc.value)


# ------------------------------------------------------------------------------------------ arrays


def test_predict_array_layouts_and_the_layout_hint():
    backend = PixelBackend(make_meta(tile_size=32))
    hwc = position_image(40, 48)
    chw = np.ascontiguousarray(hwc.transpose(2, 0, 1))
    np.testing.assert_array_equal(predict_array(backend, chw, layout="chw").classes,
                                  predict_array(backend, hwc).classes)
    with pytest.raises(DataError, match=r"layout='hwc'.*pass layout='chw'"):
        predict_array(backend, np.zeros((3, 40, 384), np.float32))
