from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import rasterio
from predict_helpers import BandClassBackend, PixelBackend, class_map_image, make_meta, position_image, write_geotiff
from affine import Affine

from terraseg.errors import DataError
from terraseg.predict import PredictionCancelled, predict_array, predict_file


def _backend():
    return PixelBackend(make_meta(mean=[100.0, 120.0, 140.0], std=[50.0, 60.0, 70.0], tile_size=64))


def _image(h, w, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def test_geotiff_streaming_matches_in_memory_and_keeps_georeference(tmp_path):
    h, w = 300, 530
    image = _image(h, w)
    transform = Affine(0.3, 0.0, 400000.0, 0.0, -0.3, 2700000.0)
    src = write_geotiff(tmp_path / "scene.tif", image, crs="EPSG:32640", transform=transform)
    backend = _backend()
    out = predict_file(backend, src, tmp_path / "out", tile_size=64, overlap=16, confidence=True,
                       probabilities=True)
    assert set(out) == {"classes", "classes_aux", "classes_qml", "color", "overlay", "confidence", "probabilities",
                        "areas_csv", "areas_json"}
    ref = predict_array(backend, image, tile_size=64, overlap=16, return_probabilities=True)
    for key in ("classes", "color", "confidence", "probabilities"):
        assert out[key].suffix == ".tif"
        with rasterio.open(out[key]) as ds:
            assert ds.crs.to_epsg() == 32640, key
            assert ds.transform == transform, key
            assert (ds.width, ds.height) == (w, h)
            data = ds.read()
        if key == "classes":
            np.testing.assert_array_equal(data[0], ref.classes)
        elif key == "color":
            colors = np.array(backend.meta.colors, np.uint8)
            np.testing.assert_array_equal(data[:3].transpose(1, 2, 0), colors[ref.classes])
            assert (data[3] == 255).all()  # every pixel classified: opaque
        elif key == "confidence":
            np.testing.assert_allclose(data[0], ref.confidence, atol=1e-6)
        else:
            np.testing.assert_allclose(data.transpose(1, 2, 0), ref.probabilities, atol=1e-6)
    with rasterio.open(out["classes"]) as ds:
        assert ds.profile["tiled"] and ds.profile["compress"] == "deflate"
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.colormap(1)[2][:3] == tuple(backend.meta.colors[2])
        assert json.loads(ds.tags()["CLASSES"]) == backend.meta.classes
    # no temporary files left behind
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_plain_tiff_without_crs_and_png_input(tmp_path):
    from PIL import Image

    image = _image(90, 120, seed=3)
    backend = _backend()
    ref = predict_array(backend, image)
    tif = write_geotiff(tmp_path / "plain.tif", image, crs=None)
    out = predict_file(backend, tif, tmp_path / "out")
    with rasterio.open(out["classes"]) as ds:
        assert ds.crs is None
        np.testing.assert_array_equal(ds.read(1), ref.classes)
    png = tmp_path / "photo.png"
    Image.fromarray(image).save(png)
    out = predict_file(backend, png, tmp_path / "out")
    assert out["classes"].suffix == ".png" and out["color"].suffix == ".png"
    np.testing.assert_array_equal(np.asarray(Image.open(out["classes"])), ref.classes)  # palette indices
    colors = np.array(backend.meta.colors, np.uint8)
    np.testing.assert_array_equal(np.asarray(Image.open(out["color"]).convert("RGB")), colors[ref.classes])
    overlay = Image.open(out["overlay"])
    assert overlay.height >= 90 and overlay.width > 120  # image plus legend panel


def test_area_report_sums_to_100_and_matches_class_raster(tmp_path):
    h, w = 100, 110
    cls, image = class_map_image(h, w)
    src = write_geotiff(tmp_path / "areas.tif", image, transform=Affine(2.0, 0.0, 500000.0, 0.0, -2.0, 2800000.0))  # inside UTM 40N
    backend = BandClassBackend(make_meta(tile_size=64))
    out = predict_file(backend, src, tmp_path / "out")
    with rasterio.open(out["classes"]) as ds:
        written = ds.read(1)
    np.testing.assert_array_equal(written, cls)
    report = json.loads(out["areas_json"].read_text())
    rows = report["classes"]
    assert [r["class"] for r in rows] == backend.meta.classes
    assert sum(r["percent"] for r in rows) == pytest.approx(100.0, abs=1e-9)
    counts = np.bincount(written.ravel(), minlength=5)
    assert [r["pixels"] for r in rows] == counts.tolist()
    assert report["georeferenced"] and report["pixel_area_m2"] == pytest.approx(4.0)
    for r in rows:
        assert r["m2"] == pytest.approx(4.0 * r["pixels"])
        assert r["ha"] == pytest.approx(r["m2"] / 10_000)
    with open(out["areas_csv"], newline="") as f:
        table = list(csv.DictReader(f))
    assert [int(r["pixels"]) for r in table] == counts.tolist()
    assert sum(float(r["percent"]) for r in table) == pytest.approx(100.0, abs=1e-3)


def test_area_report_without_georeference():
    from terraseg.predict.areas import area_report

    cls = np.zeros((10, 10), np.uint8)
    cls[:, 5:] = 1
    rep = area_report(cls, ["a", "b"])
    assert not rep["georeferenced"] and rep["classes"][0]["m2"] is None
    assert [r["percent"] for r in rep["classes"]] == [50.0, 50.0]
    # areas in degrees: tests/predict/test_ground_areas.py (against the ellipsoid)


@pytest.mark.parametrize("fmt", ["gpkg", "geojson"])
def test_vector_output_has_one_feature_per_region_with_class(tmp_path, fmt):
    import fiona
    from shapely.geometry import Point, shape

    h, w = 100, 110
    cls, image = class_map_image(h, w)
    transform = Affine(2.0, 0.0, 1000.0, 0.0, -2.0, 5000.0)
    src = write_geotiff(tmp_path / "vec.tif", image, transform=transform)
    backend = BandClassBackend(make_meta(tile_size=64))
    out = predict_file(backend, src, tmp_path / "out", vector=fmt, min_area=40.0, overlay=False)
    assert out["vector"].suffix == f".{fmt}"
    with fiona.open(out["vector"]) as layer:
        feats = list(layer)
        if fmt == "gpkg":
            assert layer.crs.to_epsg() == 32640
    by_class: dict[int, list] = {}
    for f in feats:
        props = f["properties"]
        assert props["class_name"] == backend.meta.classes[props["class_id"]]
        by_class.setdefault(props["class_id"], []).append(shape(f["geometry"]))
    # water, road, vegetation: one region each; bare land: two (the road cuts the scene); the tiny
    # building (9 px = 36 m²) is merged into the bare land around it by --min-area 40 (no hole left)
    assert {k: len(v) for k, v in by_class.items()} == {0: 1, 1: 1, 2: 1, 3: 1, 4: 2}
    assert by_class[0][0].area == pytest.approx(20 * 35 * 4.0)
    assert by_class[2][0].area == pytest.approx(20 * 30 * 4.0)
    assert sum(p.area for v in by_class.values() for p in v) == pytest.approx(h * w * 4.0)
    tiny = Point(1000.0 + 11.5 * 2.0, 5000.0 - 81.5 * 2.0)  # centre of the tiny building
    assert any(p.contains(tiny) for p in by_class[4])
    minx, miny, maxx, maxy = by_class[0][0].bounds
    assert (minx, maxy) == pytest.approx((1000.0 + 5 * 2.0, 5000.0 - 5 * 2.0))


@pytest.mark.parametrize("fmt, layer", [("gpkg", "classes"), ("geojson", "vec.classes")])
def test_vector_layer_is_named_after_the_output_not_its_temporary(tmp_path, fmt, layer):
    import fiona
    from terraseg.predict.vectorize import vectorize

    cls, _ = class_map_image(40, 50)
    first, second = tmp_path / f"vec.classes.{fmt}", tmp_path / "again" / f"vec.classes.{fmt}"
    second.parent.mkdir()
    for path in (first, second):
        vectorize(cls, path, make_meta().classes)
    assert fiona.listlayers(first) == [layer]
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == [first.name]  # no temporary left
    if fmt == "geojson":  # the same regions give the same bytes, wherever and whenever written
        assert json.loads(first.read_text())["name"] == layer
        assert first.read_bytes() == second.read_bytes()


def test_vector_keeps_small_regions_without_min_area(tmp_path):
    from terraseg.predict.vectorize import polygons

    cls, _ = class_map_image(100, 110)
    regions = list(polygons(cls, make_meta().classes))
    assert sorted(c for _, c, *_ in regions).count(2) == 2
    assert sum(px for *_, px in regions) == cls.size


def test_nodata_is_kept_as_nodata(tmp_path):
    image = _image(80, 90) | 1
    image[:20, :30] = 0
    src = write_geotiff(tmp_path / "nd.tif", image, nodata=0)
    out = predict_file(_backend(), src, tmp_path / "out", tile_size=32)
    with rasterio.open(out["classes"]) as ds:
        assert ds.nodata == 255
        data = ds.read(1)
    assert (data[:20, :30] == 255).all() and (data[20:] < 5).all()
    report = json.loads(out["areas_json"].read_text())
    assert report["nodata_pixels"] == 600
    assert sum(r["pixels"] for r in report["classes"]) == 80 * 90 - 600


def test_wrong_band_count_and_corrupt_file_leave_no_outputs(tmp_path):
    src = write_geotiff(tmp_path / "five.tif", _image(40, 40).repeat(2, axis=2)[:, :, :5])
    with pytest.raises(DataError, match="five.tif.*5 bands but the model expects 3"):
        predict_file(_backend(), src, tmp_path / "out")
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00 this is not a tiff")
    with pytest.raises(DataError, match="broken.tif"):
        predict_file(_backend(), bad, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_cancel_leaves_no_outputs(tmp_path):
    src = write_geotiff(tmp_path / "c.tif", _image(200, 200))
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(PredictionCancelled):
        predict_file(_backend(), src, tmp_path / "out", tile_size=32, batch_size=1, cancel=cancel)
    assert list((tmp_path / "out").iterdir()) == []


def test_position_image_file_matches_untiled(tmp_path):
    """A position-only model streamed through files equals one untiled call, for odd sizes."""
    h, w = 133, 157
    image = position_image(h, w).astype(np.float32)
    src = write_geotiff(tmp_path / "pos.tif", image)
    backend = PixelBackend(make_meta(tile_size=48))
    ref = backend(np.ascontiguousarray(image.transpose(2, 0, 1)[None]))[0]
    out = predict_file(backend, src, tmp_path / "out", overlay=False, probabilities=True)
    with rasterio.open(out["classes"]) as ds:
        np.testing.assert_array_equal(ds.read(1), ref.argmax(axis=0))
    with rasterio.open(out["probabilities"]) as ds:
        np.testing.assert_allclose(ds.read(), ref, atol=2e-6)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_rgba_inputs_use_alpha_as_mask(tmp_path):
    from PIL import Image

    rgb = _image(70, 60, seed=5)
    alpha = np.full((70, 60, 1), 255, np.uint8)
    alpha[:10] = 0
    rgba = np.concatenate([rgb, alpha], axis=2)
    ref = predict_array(_backend(), rgb, tile_size=32).classes
    tif = tmp_path / "rgba.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=60, height=70, count=4, dtype="uint8", photometric="RGB",
                       alpha="YES") as dst:
        dst.write(rgba.transpose(2, 0, 1))
    png = tmp_path / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(png)
    for src in (tif, png):
        out = predict_file(_backend(), src, tmp_path / "out", tile_size=32)
        if src.suffix == ".png":
            classes = np.asarray(Image.open(out["classes"]))
        else:
            with rasterio.open(out["classes"]) as ds:
                classes = ds.read(1)
        assert (classes[:10] == 255).all(), src
        np.testing.assert_array_equal(classes[10:], ref[10:])


def test_nan_and_nodata_do_not_spread(tmp_path):
    """Masked pixels reach the model as the band mean, so they cannot poison their neighbours."""

    class ContextBackend(PixelBackend):  # every output pixel also sees its whole tile (like a CNN)
        def __call__(self, batch):
            return super().__call__(batch + batch.mean(axis=(2, 3), keepdims=True))

    image = position_image(60, 70).astype(np.float32) + 1
    image[20:30, 20:30] = np.nan
    pred = predict_array(ContextBackend(make_meta()), image, tile_size=32, nodata=np.nan)
    assert (pred.classes[20:30, 20:30] == 255).all()
    outside = np.ones((60, 70), bool)
    outside[20:30, 20:30] = False
    assert (pred.classes[outside] < 5).all()
    assert np.isfinite(pred.confidence).all() and (pred.confidence[outside] > 0.2).all()
    # a -9999 nodata value is masked out of the input the same way
    image[20:30, 20:30] = -9999
    pred2 = predict_array(ContextBackend(make_meta()), image, tile_size=32, nodata=-9999)
    np.testing.assert_array_equal(pred2.classes, pred.classes)
