"""The desktop app end to end: open, predict in a thread, legend, cancel, errors, save, settings."""

from __future__ import annotations

import csv
import threading
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

ROOT = Path(__file__).resolve().parents[2]


def _predict(qtbot, win, timeout=60000):
    with qtbot.waitSignal(win.predictionFinished, timeout=timeout) as blocker:
        qtbot.mouseClick(win.predict_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.run is None, timeout=timeout)
    return blocker.args[0]


def test_open_predict_legend_matches_engine(qtbot, window, errors, sample_images, tiny_bundle, artifacts_dir):
    from terraseg.data.raster import read_raster
    from terraseg.predict import predict_array

    image = sample_images[0]
    assert window.open_image(image)
    assert window.input_view.image_size == (window.image_doc.width, window.image_doc.height)
    assert not window.predict_button.isEnabled()  # no model yet
    assert window.open_model(tiny_bundle)
    assert window.predict_button.isEnabled() and not window.cancel_button.isEnabled()
    assert window.legend.rowCount() == len(window.model_doc.meta.classes)

    result = _predict(qtbot, window)
    assert errors == []

    # the same prediction, computed independently with the engine the CLI uses
    expected = predict_array(tiny_bundle, read_raster(image)).classes
    np.testing.assert_array_equal(result.read_classes(), expected)
    counts = np.bincount(expected.ravel(), minlength=len(window.model_doc.meta.classes))
    entries = window.legend.entries()
    assert [e[0] for e in entries] == window.model_doc.meta.classes
    np.testing.assert_allclose([e[1] for e in entries], counts / counts.sum(), atol=1e-12)
    assert all(e[2] is None for e in entries)  # a PNG is not georeferenced: no hectares
    # legend text shows the same shares
    for row, share in enumerate(counts / counts.sum()):
        assert window.legend.item(row, 1).text() == f"{100 * share:.1f} %"
        assert window.legend.item(row, 2).text() == f"{counts[row]:,} px"

    # the mask is on screen, the UI is idle again, saving is possible
    assert window.result_view.has_mask() and window.result_view.mask_item.isVisible()
    assert window.predict_button.isEnabled() and not window.cancel_button.isEnabled()
    assert window.act_save_all.isEnabled()

    window.resize(1280, 760)
    qtbot.wait(50)
    shot = artifacts_dir / "gui-main-window.png"
    assert window.grab().save(str(shot))
    assert shot.stat().st_size > 10_000


def test_worker_runs_off_the_gui_thread_and_window_stays_responsive(qtbot, window, big_image, slow_backend):
    window.open_image(big_image)
    window.set_backend(slow_backend)
    ticks = []
    from PySide6.QtCore import QTimer

    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    _predict(qtbot, window)
    timer.stop()
    assert slow_backend.threads and threading.main_thread().ident not in slow_backend.threads
    # at ~0.05 s per batch the run takes well over 0.2 s; the event loop kept ticking meanwhile
    assert len(ticks) >= 5


def test_cancel_stops_the_worker_and_returns_to_idle(qtbot, window, big_image, slow_backend):
    window.open_image(big_image)
    window.set_backend(slow_backend)
    with qtbot.waitSignal(window.predictionCancelled, timeout=30000):
        assert window.start_prediction()
        assert window.cancel_button.isEnabled() and not window.predict_button.isEnabled()
        qtbot.waitUntil(lambda: window.progress.maximum() > 0 and window.progress.value() >= 1, timeout=20000)
        total_tiles = window.progress.maximum()
        qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.run is None, timeout=20000)
    calls = slow_backend.calls
    qtbot.wait(300)
    assert slow_backend.calls == calls  # the worker really stopped
    assert calls < total_tiles / 4  # batches of 4 tiles: far fewer calls than a full run needs
    assert window.result is None and not window.result_view.has_mask()
    assert window.predict_button.isEnabled() and not window.cancel_button.isEnabled()
    assert not window.progress.isVisible()
    # and the app still works: a second run completes
    slow_backend.delay = 0.0
    result = _predict(qtbot, window)
    assert result.read_classes().shape == (768, 768)


def test_second_click_while_running_is_ignored(qtbot, window, big_image, slow_backend):
    window.open_image(big_image)
    window.set_backend(slow_backend)
    assert window.start_prediction()
    first_run = window.run
    assert not window.predict_button.isEnabled()
    assert window.start_prediction() is False  # guarded even if called directly
    window.act_predict.trigger()
    qtbot.mouseClick(window.predict_button, Qt.MouseButton.LeftButton)
    assert window.run is first_run
    slow_backend.delay = 0.0
    finished = []
    window.predictionFinished.connect(finished.append)
    qtbot.waitUntil(lambda: window.run is None, timeout=60000)
    qtbot.wait(100)
    assert len(finished) == 1


def test_bad_files_show_one_sentence_and_app_keeps_working(qtbot, window, errors, tmp_path, sample_images,
                                                           tiny_bundle):
    bad_image = tmp_path / "broken.png"
    bad_image.write_bytes(b"this is not a png")
    assert not window.open_image(bad_image)
    assert len(errors) == 1 and "broken.png" in errors[0] and "\n" not in errors[0]
    assert window.image_doc is None

    bad_model = tmp_path / "model.onnx"
    bad_model.write_bytes(b"\x00not an onnx model")
    assert not window.open_model(bad_model)
    assert len(errors) == 2 and "model.onnx" in errors[1]
    not_a_model = tmp_path / "notes.txt"
    not_a_model.write_text("hello")
    assert not window.open_model(not_a_model)
    assert len(errors) == 3 and "notes.txt" in errors[2]
    assert window.model_doc is None

    # wrong band count: a one-band image for a three-band model
    from PIL import Image

    grey = tmp_path / "grey.png"
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(grey)
    assert window.open_image(grey) and window.open_model(tiny_bundle)
    assert window.start_prediction() is False
    assert len(errors) == 4 and "1 band" in errors[3] and "expects 3" in errors[3]
    assert window.run is None

    # still usable
    assert window.open_image(sample_images[0])
    result = _predict(qtbot, window)
    assert result.read_classes().shape == (window.image_doc.height, window.image_doc.width)
    assert len(errors) == 4


def test_weights_that_are_not_a_model_fail_in_the_worker_with_a_message(qtbot, window, errors, tmp_path,
                                                                        tiny_bundle, sample_images):
    broken = tmp_path / "broken-bundle"
    shutil.copytree(tiny_bundle, broken)
    (broken / "model.safetensors").write_bytes(b"garbage")
    window.open_image(sample_images[0])
    assert window.open_model(broken)  # metadata is fine; the weights are read on the first run
    with qtbot.waitSignal(window.predictionFailed, timeout=30000):
        window.start_prediction()
    qtbot.waitUntil(lambda: window.run is None, timeout=10000)
    assert len(errors) == 1 and "model.safetensors" in errors[0]
    assert window.predict_button.isEnabled()


def test_save_all_outputs(qtbot, window, errors, sample_images, tiny_bundle, tmp_path):
    from terraseg.data.raster import read_raster

    window.open_image(sample_images[1])
    window.open_model(tiny_bundle)
    result = _predict(qtbot, window)
    out = window.save_all(tmp_path / "results")
    assert errors == []
    assert set(out) >= {"classes", "color", "overlay", "areas"}
    from PIL import Image

    with Image.open(out["classes"]) as img:  # a palette PNG, as the CLI writes: the values are the classes
        assert img.mode == "P"
        classes = np.asarray(img)
    np.testing.assert_array_equal(classes, result.read_classes())
    mask = read_raster(out["color"])
    colors = np.array(window.model_doc.meta.colors, np.uint8)
    np.testing.assert_array_equal(mask, colors[result.read_classes()])
    overlay = read_raster(out["overlay"])  # the image with the mask blended in, legend panel on the right
    h, w = result.read_classes().shape
    assert overlay.shape[0] >= h and overlay.shape[1] > w
    rows = list(csv.DictReader(out["areas"].open()))
    assert len(rows) >= len(window.model_doc.meta.classes)
    fiona = pytest.importorskip("fiona")
    with fiona.open(out["polygons"]) as src:
        features = list(src)
    assert features and {f["properties"]["class_name"] for f in features} <= set(window.model_doc.meta.classes)
    # polygons cover the predicted pixels exactly (4-connected regions of the class raster)
    assert sum(f["properties"]["pixels"] for f in features) == result.read_classes().size
    assert not list((tmp_path / "results").glob(".*part*"))  # atomic: no temporary leftovers
    assert window.settings.value("paths/save_dir") == str(tmp_path / "results")


def test_georeferenced_input_gives_hectares_and_geotiff(qtbot, window, errors, tmp_path, sample_images,
                                                         tiny_bundle):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    from terraseg.data.raster import read_raster

    arr = read_raster(sample_images[2])
    tif = tmp_path / "scene.tif"
    transform = from_origin(500000.0, 2770000.0, 0.5, 0.5)  # 0.5 m pixels, UTM 40N (Dubai)
    with rasterio.open(tif, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=3,
                       dtype="uint8", crs="EPSG:32640", transform=transform) as dst:
        dst.write(np.moveaxis(arr, -1, 0))
    assert window.open_image(tif)
    assert window.image_doc.georeferenced
    assert window.image_doc.ground_area_m2() == pytest.approx(arr.shape[0] * arr.shape[1] * 0.25)
    window.open_model(tiny_bundle)
    result = _predict(qtbot, window)
    counts = np.bincount(result.read_classes().ravel(), minlength=5)
    ha = [e[2] for e in window.legend.entries()]
    np.testing.assert_allclose(ha, counts * 0.25 / 10_000)
    assert window.legend.horizontalHeaderItem(2).text() == "Area"
    assert window.legend.item(0, 2).text() == f"{counts[0] * 0.25 / 10_000:,.2f} ha"
    out = window.save_one("classes", tmp_path / "classes.tif")
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32640 and src.transform == transform
        np.testing.assert_array_equal(src.read(1), result.read_classes())
    assert errors == []


def test_views_keep_zoom_and_pan_in_sync(qtbot, window, big_image, slow_backend):
    window.open_image(big_image)
    slow_backend.delay = 0.0
    window.set_backend(slow_backend)
    _predict(qtbot, window)
    left, right = window.input_view, window.result_view
    assert right.fitted
    right.zoom_by(4.0)
    assert left.transform() == right.transform() and not right.fitted
    right.horizontalScrollBar().setValue(right.horizontalScrollBar().maximum() // 2)
    right.verticalScrollBar().setValue(right.verticalScrollBar().maximum())
    c_left = left.mapToScene(left.viewport().rect().center())
    c_right = right.mapToScene(right.viewport().rect().center())
    assert abs(c_left.x() - c_right.x()) < 2 and abs(c_left.y() - c_right.y()) < 2
    left.zoom_by(0.5)
    assert right.transform() == left.transform()

    # toggled view: one pane, Space flips between input and result
    window.toggle_result()
    assert not window.left.isVisible() and window.layer() == "input"
    window.toggle_result()
    assert window.layer() == "overlay"
    window.opacity.setValue(30)
    assert window.result_view.mask_item.opacity() == pytest.approx(0.3)
    assert window.result_view.mask_item.isVisible() and window.result_view.base_item.isVisible()
    window.set_layer("mask")
    assert window.result_view.mask_item.opacity() == 1.0 and not window.result_view.base_item.isVisible()
    # unticking a class in the legend hides it in the views (not in the saved outputs)
    shown = window.result.classes_preview
    k = int(np.bincount(shown.ravel()).argmax())
    assert (window._mask_rgb[shown == k, 3] == 255).all()
    window.legend.set_visible(k, False)
    assert (window._mask_rgb[shown == k, 3] == 0).all() and (window._mask_rgb[shown != k, 3] == 255).all()
    window.legend.set_visible(k, True)
    assert (window._mask_rgb[:, :, 3] == 255).all()
    window.act_side.trigger()  # back to side by side: the input on the left again
    assert window.left.isVisible() and window.layer() == "mask"
    assert window.input_view.transform() == window.result_view.transform()


def test_drop_files_opens_image_and_model(qtbot, window, sample_images, tiny_bundle):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(sample_images[0])), QUrl.fromLocalFile(str(tiny_bundle))])
    view = window.input_view
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    view.dropEvent(event)
    assert window.image_doc is not None and window.image_doc.path == Path(sample_images[0])
    assert window.model_doc is not None and window.model_doc.path == Path(tiny_bundle)


def test_settings_remember_folders_and_model(qtbot, settings, errors, sample_images, tiny_bundle):
    from terraseg.gui.app import MainWindow

    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.open_image(sample_images[0])
    win.open_model(tiny_bundle)
    win.opacity.setValue(70)
    win.close()
    again = MainWindow(settings=settings)
    qtbot.addWidget(again)
    assert again.model_doc is not None and again.model_doc.path == Path(tiny_bundle)
    assert again._dir("image_dir") == str(Path(sample_images[0]).parent)
    assert again.opacity.value() == 70
    assert Path(settings.fileName()).is_file()  # the temporary INI, not the user's settings


def test_without_rasterio_a_tiff_is_refused_in_one_sentence_and_pictures_work(qtbot, window, errors, tmp_path,
                                                                             sample_images, tiny_bundle,
                                                                             monkeypatch):
    """The standalone app ships without rasterio: JPG/PNG work end to end, a TIFF gets a clear message."""
    from PIL import Image

    from terraseg.data.raster import read_raster
    from terraseg.gui import imaging

    monkeypatch.setattr(imaging, "have_rasterio", lambda: False)
    arr = read_raster(sample_images[0])
    tif = tmp_path / "plain.tif"
    Image.fromarray(arr).save(tif)
    assert not window.open_image(tif)
    assert len(errors) == 1 and "plain.tif" in errors[0] and "rasterio" in errors[0] and "\n" not in errors[0]
    assert window.open_image(sample_images[0])
    window.open_model(tiny_bundle)
    result = _predict(qtbot, window)
    assert result.read_classes().shape == arr.shape[:2]
    out = window.save_all(tmp_path / "out")
    assert "polygons" not in out and {"classes", "color", "overlay", "areas"} <= set(out)
    assert not window.act_save["polygons"].isEnabled()
    assert len(errors) == 1


def test_closing_the_window_during_a_run_stops_the_worker(qtbot, settings, errors, big_image, slow_backend):
    from terraseg.gui.app import MainWindow

    win = MainWindow(settings=settings)
    win.show()
    win.open_image(big_image)
    win.set_backend(slow_backend)
    assert win.start_prediction()
    qtbot.waitUntil(lambda: slow_backend.calls >= 1, timeout=20000)
    thread = win.run.thread
    win.close()
    assert thread.isFinished()
    calls = slow_backend.calls
    qtbot.wait(200)
    assert slow_backend.calls == calls
    assert settings.value("window/geometry") is not None
    win.deleteLater()
