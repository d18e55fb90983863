"""Figures: confusion matrix and training curves are real, non-blank PNG images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from terraseg.errors import DataError
from terraseg.plots import plot_confusion_matrix, plot_curves, read_metrics_csv


def _check_png(path, min_size=(300, 250)):
    assert path.is_file() and path.stat().st_size > 2000
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.width >= min_size[0] and im.height >= min_size[1]
        arr = np.asarray(im.convert("RGB"))
    # Not blank: many distinct colours (text, colour map) and a mostly light background.
    assert len(np.unique(arr.reshape(-1, 3), axis=0)) > 50
    return arr


def test_confusion_matrix_png(tmp_path, artifacts_dir):
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 50, (5, 5)) + np.diag([900, 500, 700, 300, 0])
    cm[4] = 0  # a class absent from the targets: its row is left blank
    names = ["water", "road", "building", "vegetation", "bare land"]
    out = plot_confusion_matrix(cm, names, tmp_path / "cm.png")
    arr = _check_png(out)
    plot_confusion_matrix(cm, names, artifacts_dir / "test_plots_confusion_matrix.png")
    # Strong diagonal -> dark blue cells exist; the absent row is drawn grey.
    dark_blue = (arr[..., 2] > 100) & (arr[..., 0] < 60)
    assert dark_blue.sum() > 1000
    assert ((arr == [0xDD, 0xDD, 0xDD]).all(axis=-1)).sum() > 500
    assert [p.name for p in tmp_path.iterdir()] == ["cm.png"]  # no temporary left behind

    raw = plot_confusion_matrix(cm, None, tmp_path / "raw.png", normalize=False)
    _check_png(raw)
    with pytest.raises(ValueError, match="class names"):
        plot_confusion_matrix(cm, names[:3], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def _write_lightning_csv(folder):
    """A metrics.csv written by Lightning's own CSVLogger: sparse rows, step and epoch logs."""
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(str(folder), name="run", version=0)
    step = 0
    for epoch in range(4):
        for _ in range(3):
            logger.log_metrics({"train_loss_step": 2.0 / (step + 1), "epoch": epoch}, step=step)
            step += 1
        logger.log_metrics({"val_loss": 1.5 - 0.3 * epoch, "val_pa": 0.5 + 0.1 * epoch,
                            "val_miou": 0.2 + 0.1 * epoch, "epoch": epoch}, step=step - 1)
        logger.log_metrics({"train_loss_epoch": 1.6 - 0.3 * epoch, "train_pa": 0.45 + 0.1 * epoch,
                            "train_miou": 0.15 + 0.1 * epoch, "epoch": epoch}, step=step - 1)
    logger.save()
    return folder / "run" / "version_0" / "metrics.csv"


def test_plot_curves_from_csvlogger(tmp_path, artifacts_dir):
    csv_path = _write_lightning_csv(tmp_path)
    columns, rows = read_metrics_csv(csv_path)
    assert {"epoch", "train_loss_epoch", "val_miou"} <= set(columns)
    out = plot_curves(csv_path, tmp_path / "curves.png")
    arr = _check_png(out, min_size=(900, 300))
    plot_curves(csv_path, artifacts_dir / "test_plots_curves.png")
    # The default colour cycle draws train in blue (#1f77b4) and val in orange (#ff7f0e).
    blue = (np.abs(arr.astype(int) - [0x1F, 0x77, 0xB4]).sum(-1) < 40).sum()
    orange = (np.abs(arr.astype(int) - [0xFF, 0x7F, 0x0E]).sum(-1) < 40).sum()
    assert blue > 200 and orange > 200


def test_plot_curves_before_first_validation(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train_loss_step\n0,0,2.5\n0,1,2.1\n", encoding="utf-8")
    arr = _check_png(plot_curves(path, tmp_path / "curves.png"))
    orange = (np.abs(arr.astype(int) - [0xFF, 0x7F, 0x0E]).sum(-1) < 40).sum()
    blue = (np.abs(arr.astype(int) - [0x1F, 0x77, 0xB4]).sum(-1) < 40).sum()
    assert orange == 0 and blue > 0  # the train loss (step values, averaged) but no val curve


def test_plot_curves_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        plot_curves(tmp_path / "nope.csv", tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()
