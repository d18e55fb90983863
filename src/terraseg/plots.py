"""Figures for training and evaluation (matplotlib, Agg canvas, imported lazily).

* :func:`plot_confusion_matrix` – row-normalised confusion matrix with class names.
* :func:`plot_curves` – loss, pixel accuracy and mIoU of train and val per epoch from a Lightning
  ``CSVLogger`` ``metrics.csv``.

Figures are drawn on a private ``Figure`` + Agg canvas (no ``pyplot`` state, no GUI backend), so they
can be made from training callbacks, worker threads and the Qt app alike. Files are written atomically.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from terraseg._io import atomic_path
from terraseg.errors import DataError

__all__ = ["plot_confusion_matrix", "plot_curves", "read_metrics_csv", "DEFAULT_PANELS"]


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    fmt = (path.suffix.lstrip(".") or "png").lower()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt)
    return path


def plot_confusion_matrix(cm: Any, class_names: Sequence[str] | None, path: str | Path,
                          normalize: bool = True, title: str | None = None) -> Path:
    """Draw the confusion matrix (rows = true, columns = predicted) to ``path`` (PNG by default).

    With ``normalize`` every row is divided by its total, so the diagonal shows each class's recall;
    rows of classes absent from the targets are left blank (grey). Cells are annotated with
    percentages (or counts) when there are at most 25 classes.
    """
    if hasattr(cm, "detach"):
        cm = cm.detach().cpu().numpy()
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square (K, K), got shape {cm.shape}")
    k = cm.shape[0]
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for a {k}x{k} confusion matrix")

    if normalize:
        rows = cm.sum(axis=1, keepdims=True)
        values = np.full_like(cm, np.nan)
        np.divide(cm, rows, out=values, where=rows > 0)
    else:
        values = cm

    side = max(4.5, 0.6 * k + 2.5)
    fig = _new_figure(side + 1.2, side)
    ax = fig.add_subplot(1, 1, 1)
    import matplotlib as mpl

    cmap = mpl.colormaps["Blues"].with_extremes(bad="#dddddd")
    vmax = 1.0 if normalize else (float(np.nanmax(values)) if np.isfinite(values).any() else 1.0)
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=max(vmax, 1e-12),
                   interpolation="nearest")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if normalize:
        from matplotlib.ticker import PercentFormatter

        cbar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    cbar.set_label("% of the true class" if normalize else "pixels")
    ax.set_xticks(range(k), labels=names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k), labels=names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or ("Confusion matrix (% of each true class)" if normalize else "Confusion matrix (pixels)"))
    if k <= 25:
        size = 9 if k <= 10 else 7
        for i in range(k):
            for j in range(k):
                v = values[i, j]
                if not np.isfinite(v):
                    continue
                text = f"{100 * v:.1f}" if normalize else f"{int(v):,}"
                dark = v > 0.6 * vmax
                ax.text(j, i, text, ha="center", va="center", fontsize=size,
                        color="white" if dark else "black")
    return _save(fig, path)


# Panel title -> (train column, val column). Lightning CSVLogger columns; ``<name>_epoch`` (from
# ``self.log(..., on_step=True, on_epoch=True)``) and ``train/<name>`` spellings are found too.
DEFAULT_PANELS: dict[str, tuple[str, str]] = {
    "loss": ("train_loss", "val_loss"),
    "pixel accuracy": ("train_pa", "val_pa"),
    "mIoU": ("train_miou", "val_miou"),
}


def read_metrics_csv(metrics_csv: str | Path) -> tuple[list[str], list[dict[str, float]]]:
    """Read a CSVLogger ``metrics.csv``: column names and rows of the non-empty numeric cells."""
    path = Path(metrics_csv)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = list(reader.fieldnames or [])
            rows = []
            for raw in reader:
                row = {}
                for key, val in raw.items():
                    if key is None or val in (None, ""):
                        continue
                    try:
                        row[key] = float(val)
                    except ValueError:
                        continue
                rows.append(row)
    except FileNotFoundError:
        raise DataError("metrics file not found", path) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"unreadable metrics file ({exc})", path) from None
    return columns, rows


def _find_column(columns: Sequence[str], name: str) -> str | None:
    stage, _, metric = name.partition("_")
    candidates = [f"{name}_epoch", name, f"{stage}/{metric}_epoch", f"{stage}/{metric}",
                  f"{name}_step", f"{stage}/{metric}_step"]  # step values: averaged per epoch
    for c in candidates:
        if c in columns:
            return c
    return None


def _series(rows: list[dict[str, float]], column: str) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``column`` per epoch (mean over the epoch's rows; step index when no epoch column)."""
    by_x: dict[float, list[float]] = {}
    for i, row in enumerate(rows):
        if column not in row or not math.isfinite(row[column]):
            continue
        x = row.get("epoch", row.get("step", float(i)))
        by_x.setdefault(x, []).append(row[column])
    xs = np.array(sorted(by_x), dtype=np.float64)
    ys = np.array([float(np.mean(by_x[x])) for x in xs], dtype=np.float64)
    return xs, ys


def plot_curves(metrics_csv: str | Path, out_png: str | Path,
                panels: Mapping[str, tuple[str, str]] | None = None) -> Path:
    """Plot train and val curves (loss, pixel accuracy, mIoU by default) from ``metrics_csv``.

    ``panels`` maps a panel title to ``(train column, val column)``; a column may be missing (e.g.
    before the first validation), its panel then shows what there is. The x axis is the epoch
    (``epoch`` column, counted from 1), or the row's ``step`` when there is no epoch column.
    """
    panels = dict(panels or DEFAULT_PANELS)
    columns, rows = read_metrics_csv(metrics_csv)
    has_epoch = "epoch" in columns
    fig = _new_figure(4.2 * len(panels), 3.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, (train_name, val_name)) in zip(axes, panels.items()):
        drawn = 0
        for label, name, style in (("train", train_name, "-"), ("val", val_name, "-")):
            col = _find_column(columns, name)
            if col is None:
                continue
            xs, ys = _series(rows, col)
            if xs.size == 0:
                continue
            if has_epoch:
                xs = xs + 1
            ax.plot(xs, ys, style, marker="o" if xs.size < 30 else None, markersize=3, label=label)
            drawn += 1
        ax.set_title(title)
        ax.set_xlabel("epoch" if has_epoch else "step")
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes, color="grey")
        if has_epoch:
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, out_png)
