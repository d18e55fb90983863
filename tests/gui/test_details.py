"""The smaller items of issue 16: model runtime, steady toolbar, legend, dialogs, status bar, CLI names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QFileDialog, QStyle, QStyleOptionViewItem


def _predict(qtbot, win, timeout=60000):
    with qtbot.waitSignal(win.predictionFinished, timeout=timeout) as blocker:
        assert win.start_prediction()
    qtbot.waitUntil(lambda: win.run is None, timeout=timeout)
    return blocker.args[0]


def _quantised_nodes(path: Path) -> int:
    import onnx

    return sum(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in onnx.load(str(path)).graph.node)


def test_model_panel_shows_backend_and_precision(qtbot, window, tiny_bundle, tiny_onnx, sample_images, tmp_path):
    from terraseg.export import quantize_int8

    assert window.open_model(tiny_onnx)
    assert _quantised_nodes(tiny_onnx) == 0
    assert "runs on onnx fp32" in window.model_label.text()
    int8 = quantize_int8(tiny_onnx, tmp_path / "tiny-int8.onnx", tile_size=64, num_tiles=2)
    assert _quantised_nodes(int8) > 0  # really an int8 graph
    assert window.open_model(int8)
    assert "runs on onnx int8" in window.model_label.text()
    # a bundle: terraseg.runtime picks the backend on the first run, then the panel says which
    assert window.open_model(tiny_bundle)
    assert "chosen on the first run" in window.model_label.text()
    window.open_image(sample_images[0])
    _predict(qtbot, window)
    backend = window.model_doc.backend
    assert backend.precision == "fp32" and backend.name in ("onnx", "torch")
    assert f"runs on {backend.name} fp32" in window.model_label.text()


def test_toolbar_does_not_move_when_predict_becomes_running(qtbot, window, big_image, slow_backend):
    window.open_image(big_image)
    window.set_backend(slow_backend)
    qtbot.wait(50)
    idle_x, idle_w = window.cancel_button.x(), window.predict_button.width()
    assert window.start_prediction()
    qtbot.waitUntil(lambda: window.predict_button.text() == "Running…")
    qtbot.wait(100)  # let the toolbar lay itself out again
    assert window.predict_button.width() == idle_w and window.cancel_button.x() == idle_x
    # the whole text fits
    assert window.predict_button.fontMetrics().horizontalAdvance("Running…") < window.predict_button.width()
    slow_backend.delay = 0.0
    qtbot.waitUntil(lambda: window.run is None, timeout=60000)
    qtbot.wait(50)
    assert window.cancel_button.x() == idle_x


def test_legend_header_is_the_same_before_and_after_a_run(qtbot, window, big_image, slow_backend):
    slow_backend.delay = 0.0
    window.set_backend(slow_backend)
    window.open_image(big_image)
    before = [window.legend.horizontalHeaderItem(i).text() for i in range(3)]
    result = _predict(qtbot, window)
    after = [window.legend.horizontalHeaderItem(i).text() for i in range(3)]
    assert before == after == ["Class", "Share", "Area"]
    counts = np.bincount(result.read_classes().ravel(), minlength=slow_backend.meta.num_classes)
    assert [window.legend.item(i, 2).text() for i in range(len(counts))] == [f"{c:,} px" for c in counts]


def _check_box_contrast(legend, row: int) -> float:
    """Largest brightness difference between the check-box area and the table background around it."""
    index = legend.model().index(row, 0)
    opt = QStyleOptionViewItem()
    opt.rect = legend.visualRect(index)
    opt.features |= QStyleOptionViewItem.ViewItemFeature.HasCheckIndicator
    r = legend.style().subElementRect(QStyle.SubElement.SE_ItemViewItemCheckIndicator, opt, legend)
    img = legend.viewport().grab(r).toImage()
    grey = np.array([[img.pixelColor(x, y).lightness() for x in range(img.width())] for y in range(img.height())])
    background = legend.palette().color(legend.palette().ColorRole.Base).lightness()
    return float(np.abs(grey - background).max())


def test_unticked_legend_box_is_clearly_visible(qtbot, window, sample_meta, slow_backend):
    window.set_backend(slow_backend)
    legend = window.legend
    legend.clearSelection()
    legend.set_visible(1, False)
    qtbot.wait(50)
    assert legend.visible_classes()[1] is False
    # an outline at least as bright as the text colour's half against the dark table
    assert _check_box_contrast(legend, 1) > 80
    assert _check_box_contrast(legend, 0) > 80  # ticked: accent fill with a white tick


def test_save_dialogs_open_beside_the_image(qtbot, window, big_image, slow_backend, monkeypatch, tmp_path):
    slow_backend.delay = 0.0
    window.set_backend(slow_backend)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    window.settings.setValue("paths/save_dir", str(elsewhere))  # a remembered folder elsewhere
    window.open_image(big_image)
    _predict(qtbot, window)
    asked = {}

    def save_name(parent, caption, start, filters=""):
        asked["file"] = start
        return "", ""

    def folder(parent, caption, start):
        asked["folder"] = start
        return ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(save_name))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(folder))
    window.choose_save_one("classes")
    window.choose_save_all()
    assert Path(asked["file"]) == big_image.parent / "big_classes.png"
    assert Path(asked["folder"]) == big_image.parent


def test_status_bar_is_cleared_for_a_new_image(qtbot, window, big_image, sample_images, slow_backend):
    slow_backend.delay = 0.0
    window.set_backend(slow_backend)
    window.open_image(big_image)
    _predict(qtbot, window)
    window._on_hover(10.0, 20.0)
    assert window.hover_label.text().startswith("x 10  y 20")
    assert window.open_image(sample_images[0])
    assert window.hover_label.text() == ""
    assert "Predicted" not in window.statusBar().currentMessage()


def test_saved_files_have_the_cli_names_and_polygon_options(qtbot, window, errors, sample_images, tiny_bundle,
                                                            tmp_path):
    """The same image through `terraseg predict --vector gpkg --min-area --simplify` and the app's Save all."""
    fiona = pytest.importorskip("fiona")
    from shapely.geometry import shape
    from typer.testing import CliRunner

    from terraseg.cli import app

    image = sample_images[0]
    cli_dir, app_dir = tmp_path / "cli", tmp_path / "app"
    res = CliRunner().invoke(app, ["predict", str(tiny_bundle), str(image), "--out", str(cli_dir), "--vector", "gpkg",
                                   "--min-area", "30", "--simplify", "0.5"])
    assert res.exit_code == 0, res.output
    window.open_image(image)
    window.open_model(tiny_bundle)
    window.min_area.setValue(30)
    window.simplify.setValue(0.5)
    _predict(qtbot, window)
    out = window.save_all(app_dir)
    assert errors == []
    assert sorted(p.name for p in app_dir.iterdir()) == sorted(p.name for p in cli_dir.iterdir())
    stem = Path(image).stem
    assert {p.name for p in app_dir.iterdir()} == {f"{stem}_classes.png", f"{stem}_color.png", f"{stem}_overlay.png",
                                                   f"{stem}_areas.csv", f"{stem}_areas.json", f"{stem}_polygons.gpkg"}
    assert out["polygons"].name == f"{stem}_polygons.gpkg"
    from PIL import Image

    for name in (f"{stem}_classes.png", f"{stem}_color.png"):
        with Image.open(app_dir / name) as a, Image.open(cli_dir / name) as c:
            assert a.mode == c.mode
            np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
    assert (app_dir / f"{stem}_areas.csv").read_text() == (cli_dir / f"{stem}_areas.csv").read_text()

    def polygons(path):
        with fiona.open(path) as src:
            return [(f["properties"]["class_id"], shape(f["geometry"])) for f in src]

    ours, theirs = polygons(app_dir / f"{stem}_polygons.gpkg"), polygons(cli_dir / f"{stem}_polygons.gpkg")
    assert len(ours) == len(theirs) > 0
    assert min(g.area for _c, g in ours) >= 30 * 0.5  # simplification may shave a little off 30 px²
    assert sorted((c, round(g.area, 6)) for c, g in ours) == sorted((c, round(g.area, 6)) for c, g in theirs)
    # and the options are remembered
    window.close()
    assert float(window.settings.value("polygons/min_area")) == 30.0
