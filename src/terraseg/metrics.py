"""Segmentation metrics from one confusion matrix accumulated over a whole data set.

The confusion matrix ``cm`` is ``(K, K)`` int64 with **rows = true class, columns = predicted class**.
Pixels whose target equals the ignore index are left out; every other target must be a class index
in ``[0, K)``.

All metrics derive from that single matrix (never averaged per image):

* ``pixel_accuracy`` = trace / total
* per class ``c`` with ``tp = cm[c, c]``, ``support = cm[c, :].sum()`` (true pixels) and
  ``predicted = cm[:, c].sum()``:
  ``recall = tp / support``, ``precision = tp / predicted``,
  ``iou = tp / (support + predicted - tp)``, ``f1 = 2 tp / (support + predicted)``
* ``mean_class_accuracy`` = mean recall (= balanced accuracy), ``miou`` = mean IoU,
  ``mean_precision`` / ``mean_recall`` / ``mean_f1`` = macro averages
* ``fwiou`` = sum over classes of ``support / total * iou``
* ``kappa`` = Cohen's kappa ``(p_o - p_e) / (1 - p_e)`` with ``p_e = sum(support * predicted) / total**2``

**Undefined values are NaN and are left out of every mean.** A ratio with a zero denominator is
undefined: a class absent from both target and prediction has NaN IoU, precision, recall and F1
(and does not count in mIoU); a class that is predicted but never true has recall NaN, and IoU,
precision and F1 of 0 (false positives do count against it); a class that is true but never predicted
has precision NaN and IoU, recall, F1 of 0. A mean over no defined values is NaN, as are all metrics of
an empty matrix and kappa when ``p_e == 1``. :func:`jsonable` turns NaN into ``None`` (JSON ``null``).

Works with numpy arrays and with torch tensors (CPU or GPU; torch is only imported when a tensor is
passed), so a training loop can accumulate on the device without a host sync per batch.
"""

from __future__ import annotations

import math
from pathlib import PurePath
from typing import Any, Sequence

import numpy as np

__all__ = ["confusion_matrix", "ConfusionMatrix", "compute_metrics", "jsonable", "format_table"]

# Pixels are counted in chunks so a huge mask never needs a full-size int64 temporary.
_CHUNK = 1 << 22

SUMMARY_KEYS = ("pixel_accuracy", "mean_class_accuracy", "miou", "fwiou", "kappa",
                "mean_precision", "mean_recall", "mean_f1")


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "device") and hasattr(x, "dtype")


def _as_labels(pred: Any, target: Any):
    """Return ``pred`` as class indices with the shape of ``target`` (argmax over dim 1 for scores)."""
    pshape, tshape = tuple(pred.shape), tuple(target.shape)
    if pshape != tshape:
        if len(pshape) == len(tshape) + 1 and pshape[:1] + pshape[2:] == tshape:
            pred = pred.argmax(1)  # (N, K, ...) scores / logits / probabilities
        else:
            raise ValueError(f"prediction shape {pshape} does not match target shape {tshape}")
    return pred


def _check_range(lo: int, hi: int, what: str, num_classes: int) -> None:
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(f"{what} contains class index {bad} outside 0..{num_classes - 1} "
                         f"(and it is not the ignore index)")


def _cm_numpy(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    pred = np.asarray(pred).reshape(-1)
    target = np.asarray(target).reshape(-1)
    k = num_classes
    cm = np.zeros(k * k, dtype=np.int64)
    for start in range(0, target.size, _CHUNK):
        t = target[start:start + _CHUNK]
        p = pred[start:start + _CHUNK]
        if ignore_index is not None:
            keep = t != ignore_index
            if not keep.all():
                t, p = t[keep], p[keep]
        if t.size == 0:
            continue
        _check_range(int(t.min()), int(t.max()), "target", k)
        _check_range(int(p.min()), int(p.max()), "prediction", k)
        idx = t.astype(np.int64) * k + p.astype(np.int64)
        cm += np.bincount(idx, minlength=k * k)
    return cm.reshape(k, k)


def _cm_torch(pred, target, num_classes: int, ignore_index: int | None):
    """Confusion matrix as a flat ``(K*K + 2,)`` int64 tensor on the inputs' device, no host sync.

    Cell ``K*K`` counts pixels whose target or prediction is out of range (checked by
    :func:`_finish_torch` when the result is copied to the host), cell ``K*K + 1`` ignored pixels.
    """
    import torch

    k = num_classes
    t = target.reshape(-1).long()
    p = pred.reshape(-1).to(t.device).long()
    idx = t * k + p
    bad = (t < 0) | (t >= k) | (p < 0) | (p >= k)
    idx = torch.where(bad, torch.full_like(idx, k * k), idx)
    if ignore_index is not None:
        idx = torch.where(t == ignore_index, torch.full_like(idx, k * k + 1), idx)
    return torch.bincount(idx, minlength=k * k + 2)


def _finish_torch(flat, num_classes: int) -> np.ndarray:
    k = num_classes
    arr = flat.detach().cpu().numpy().astype(np.int64)
    if arr[k * k]:
        raise ValueError(f"{int(arr[k * k])} target or prediction pixels hold a class index outside "
                         f"0..{k - 1} (and not the ignore index)")
    return arr[:k * k].reshape(k, k)


def confusion_matrix(pred: Any, target: Any, num_classes: int, ignore_index: int | None = 255) -> np.ndarray:
    """Confusion matrix ``(K, K)`` int64, rows = true class, columns = predicted class.

    ``pred`` holds class indices with the shape of ``target``, or scores ``(N, K, ...)`` that are
    arg-maxed over dim 1. Pixels whose target is ``ignore_index`` are excluded. numpy arrays and torch
    tensors (any device) are accepted; the result is always a numpy array.
    """
    if num_classes < 1:
        raise ValueError("num_classes must be at least 1")
    pred = _as_labels(pred, target)
    if _is_torch(pred) or _is_torch(target):
        import torch

        if not _is_torch(target):
            target = torch.as_tensor(np.asarray(target))
        if not _is_torch(pred):
            pred = torch.as_tensor(np.asarray(pred))
        return _finish_torch(_cm_torch(pred, target, num_classes, ignore_index), num_classes)
    return _cm_numpy(pred, target, num_classes, ignore_index)


class ConfusionMatrix:
    """Accumulates one confusion matrix over many batches / images.

    ``update(pred, target)`` takes numpy arrays or torch tensors (see :func:`confusion_matrix`).
    Tensor updates are summed on the tensor's device and only copied to the host by ``matrix`` /
    ``compute``, so a GPU training step does not wait on the host.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255,
                 class_names: Sequence[str] | None = None):
        if num_classes < 1:
            raise ValueError("num_classes must be at least 1")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.class_names = list(class_names) if class_names is not None else None
        self.reset()

    def reset(self) -> None:
        self._np = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self._dev: dict[str, Any] = {}  # device string -> flat int64 tensor (see _cm_torch)

    def update(self, pred: Any, target: Any) -> "ConfusionMatrix":
        pred = _as_labels(pred, target)
        if _is_torch(pred) or _is_torch(target):
            import torch

            if not _is_torch(target):
                target = torch.as_tensor(np.asarray(target))
            if not _is_torch(pred):
                pred = torch.as_tensor(np.asarray(pred), device=target.device)
            cm = _cm_torch(pred, target, self.num_classes, self.ignore_index)
            key = str(cm.device)
            if key in self._dev:
                self._dev[key] += cm
            else:
                self._dev[key] = cm
        else:
            self._np += _cm_numpy(pred, target, self.num_classes, self.ignore_index)
        return self

    def add(self, cm: Any) -> "ConfusionMatrix":
        """Add an already computed ``(K, K)`` matrix (e.g. gathered from other processes)."""
        arr = cm.detach().cpu().numpy() if _is_torch(cm) else np.asarray(cm)
        if arr.shape != (self.num_classes, self.num_classes):
            raise ValueError(f"matrix shape {arr.shape} does not match {self.num_classes} classes")
        self._np += arr.astype(np.int64)
        return self

    @property
    def matrix(self) -> np.ndarray:
        """The accumulated ``(K, K)`` int64 matrix as a numpy array."""
        out = self._np.copy()
        for cm in self._dev.values():
            out += _finish_torch(cm, self.num_classes)
        return out

    @property
    def total(self) -> int:
        return int(self.matrix.sum())

    def compute(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """Metrics of the accumulated matrix (see :func:`compute_metrics`)."""
        return compute_metrics(self.matrix, class_names if class_names is not None else self.class_names)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else math.nan


def compute_metrics(cm: Any, class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """All metrics of one confusion matrix (rows = true, columns = predicted).

    Returns a dict with ``num_classes``, ``pixels`` (matrix total), ``pixel_accuracy``,
    ``mean_class_accuracy``, ``miou``, ``fwiou``, ``kappa``, ``mean_precision``, ``mean_recall``,
    ``mean_f1`` and ``per_class`` = ``{name: {iou, precision, recall, f1, support, predicted}}`` in
    class order. Undefined values are ``float('nan')`` (see the module docstring); use
    :func:`jsonable` before ``json.dump``.
    """
    if _is_torch(cm):
        cm = cm.detach().cpu().numpy()
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square (K, K), got shape {cm.shape}")
    if cm.size and (cm < 0).any():
        raise ValueError("confusion matrix has negative counts")
    cm = cm.astype(np.float64)
    k = cm.shape[0]
    if class_names is None:
        names = [str(i) for i in range(k)]
    else:
        names = [str(n) for n in class_names]
        if len(names) != k:
            raise ValueError(f"{len(names)} class names for a {k}x{k} confusion matrix")
        if len(set(names)) != k:
            raise ValueError(f"class names are not unique: {names}")

    total = cm.sum()
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)

    recall = _div(tp, support)
    precision = _div(tp, predicted)
    iou = _div(tp, support + predicted - tp)
    f1 = _div(2 * tp, support + predicted)

    pixel_accuracy = float(tp.sum() / total) if total > 0 else math.nan
    if total > 0:
        freq = support / total
        present = support > 0  # IoU is always defined where support > 0
        fwiou = float((freq[present] * iou[present]).sum())
        p_e = float((support * predicted).sum() / (total * total))
        kappa = (pixel_accuracy - p_e) / (1.0 - p_e) if p_e < 1.0 else math.nan
    else:
        fwiou = kappa = math.nan

    per_class = {
        name: {
            "iou": float(iou[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
            "predicted": int(predicted[i]),
        }
        for i, name in enumerate(names)
    }
    return {
        "num_classes": k,
        "pixels": int(total),
        "pixel_accuracy": pixel_accuracy,
        "mean_class_accuracy": _nanmean(recall),
        "miou": _nanmean(iou),
        "fwiou": fwiou,
        "kappa": float(kappa),
        "mean_precision": _nanmean(precision),
        "mean_recall": _nanmean(recall),
        "mean_f1": _nanmean(f1),
        "per_class": per_class,
    }


def jsonable(obj: Any) -> Any:
    """Copy of ``obj`` that ``json.dumps`` writes as strict JSON: NaN/inf -> None, numpy -> Python,
    paths -> strings."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


def _fmt(v: Any, pct: bool = True) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return f"{int(v):,}"
    return f"{100 * float(v):.2f}" if pct else f"{float(v):.4f}"


SUMMARY_LABELS = {
    "pixel_accuracy": "Pixel accuracy (%)",
    "mean_class_accuracy": "Mean class accuracy (%)",
    "miou": "mIoU (%)",
    "fwiou": "Frequency-weighted IoU (%)",
    "kappa": "Cohen's kappa",
    "mean_precision": "Mean precision (%)",
    "mean_recall": "Mean recall (%)",
    "mean_f1": "Mean F1 (%)",
}


def summary_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, formatted value)`` for the overall metrics (percentages, kappa as a fraction)."""
    rows = [(SUMMARY_LABELS[k], _fmt(metrics.get(k), pct=(k != "kappa"))) for k in SUMMARY_KEYS]
    rows.append(("Pixels evaluated", _fmt(int(metrics.get("pixels", 0)))))
    return rows


def class_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """One row per class: name, IoU, precision, recall, F1 (%), support (pixels)."""
    return [[name, _fmt(m.get("iou")), _fmt(m.get("precision")), _fmt(m.get("recall")), _fmt(m.get("f1")),
             _fmt(int(m.get("support", 0)))]
            for name, m in metrics["per_class"].items()]


CLASS_HEADER = ["Class", "IoU (%)", "Precision (%)", "Recall (%)", "F1 (%)", "Support (px)"]


def format_table(metrics: dict[str, Any]) -> str:
    """The metrics as two Markdown tables (overall, then per class). Undefined values show as ``–``."""
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| Metric | Value |", "| --- | ---: |"]
    lines += [f"| {esc(a)} | {b} |" for a, b in summary_rows(metrics)]
    lines += ["", "| " + " | ".join(CLASS_HEADER) + " |", "| --- |" + " ---: |" * (len(CLASS_HEADER) - 1)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in class_rows(metrics)]
    return "\n".join(lines) + "\n"
