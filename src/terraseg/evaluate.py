"""Evaluation of a model on a labelled data set at full resolution: ``terraseg evaluate``.

Every image of the chosen split is predicted whole, at full resolution, through the same tiled
predictor as ``terraseg predict`` (:func:`terraseg.predict.engine.predict_source` with a confusion-matrix sink), and compared with its
mask. One confusion matrix is accumulated over the whole set (metrics are never averaged per image)
and all metrics are computed from it (:func:`terraseg.metrics.compute_metrics`).

Outputs (``out_dir``, written all-or-nothing when the whole set has been evaluated):

* ``metrics.json`` – the metrics, the raw confusion matrix (rows = true, columns = predicted),
  class names, model / data / split / settings, and per-image pixel counts and pixel accuracy;
* ``metrics.md`` – Markdown tables: overall metrics, per-class IoU / precision / recall / F1 /
  support, per image;
* ``confusion_matrix.png`` – the row-normalised confusion matrix with class names.

Everything is checked before the model is loaded: a model whose class or band count differs from
the data set's, an unknown or empty split, an image without a mask raise a one-line
:class:`~terraseg.errors.TerrasegError`, and no output is written.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from terraseg.errors import ConfigError, DataError, ModelError

__all__ = ["evaluate", "select_samples", "default_out_dir", "OUTPUT_NAMES"]

OUTPUT_NAMES = {"json": "metrics.json", "markdown": "metrics.md", "confusion_matrix": "confusion_matrix.png"}
#: warn when more than this share of the mask pixels is ignored or of colours no class owns: the
#: scores then describe only a small remainder of the images
IGNORED_WARNING_SHARE = 0.5

# --------------------------------------------------------------------------------------------------
# inputs


def _peek_meta(model, backend: str = "auto"):
    """``(BundleMeta, path or None, backend name)`` without loading weights (no torch import)."""
    from terraseg.bundle import Bundle, is_onnx_model, read_meta

    if isinstance(model, (str, Path)):
        from terraseg.pretrained import resolve_model

        path = resolve_model(model)
        if backend not in ("auto", "torch", "onnx"):
            raise ConfigError(f"unknown backend {backend!r}; choose torch, onnx or auto")
        is_onnx = is_onnx_model(path)
        if backend == "auto":
            backend = "onnx" if is_onnx else "torch"
        if is_onnx:
            from terraseg.predict.onnx_backend import read_onnx_meta

            return read_onnx_meta(path), path, backend
        return read_meta(path), path, backend
    if isinstance(model, Bundle):
        return model.meta, Path(model.path) if model.path is not None else None, "torch"
    if callable(model) and hasattr(model, "meta"):
        name = getattr(model, "name", None) or ("torch" if type(model).__name__ == "TorchBackend" else "custom")
        path = getattr(model, "source_path", None) or getattr(getattr(model, "bundle", None), "path", None)
        return model.meta, Path(path) if path is not None else None, name
    raise ModelError(f"expected a bundle path, an ONNX path, a Bundle or a backend, got {type(model).__name__}")


def _input_bands(meta, spec, bands=None) -> list[int] | None:
    """The image bands fed to the model: ``bands`` (e.g. ``--bands 4,3,2``), else the data set's
    selection, else the bands the model was trained on (``None``: every band but alpha)."""
    from terraseg.data.source import parse_bands

    return parse_bands(bands) or getattr(spec, "band_indexes", None) or getattr(meta, "band_indexes", None)


def _check_compatible(meta, spec, model_path, bands=None) -> list[str]:
    """Raise for a model that cannot be evaluated on ``spec``; return warnings for lesser mismatches."""
    where = model_path if model_path is not None else "model"
    data = spec.path or spec.root
    if int(meta.num_classes) != spec.num_classes:
        raise ModelError(
            f"model has {meta.num_classes} classes ({', '.join(meta.classes)}) but the data set {data} has "
            f"{spec.num_classes} ({', '.join(spec.class_names)})", where)
    chosen = _input_bands(meta, spec, bands)
    count = len(chosen) if chosen else (getattr(spec, "band_count", None) or spec.bands)
    if int(meta.in_channels) != count:
        picked = f" (bands {','.join(map(str, chosen))} selected)" if chosen else ""
        raise ModelError(f"model expects {meta.in_channels} band(s) but the data set {data} gives {count}{picked}; "
                         "choose the model's bands with --bands",
                         where)
    warnings = []
    if [str(c) for c in meta.classes] != list(spec.class_names):
        pairs = [f"{i}: {a} / {b}" for i, (a, b) in enumerate(zip(meta.classes, spec.class_names)) if a != b]
        warnings.append("class names differ between model and data set (model / data set): " + ", ".join(pairs)
                        + "; classes are matched by index and reported with the data set's names")
    return warnings


def select_samples(spec, split: str | None = "test", split_file: str | Path | None = None) -> tuple[list, Path | None]:
    """The labelled samples to evaluate and the split file used (``None`` for ``split=None``: all)."""
    if split is None or split == "all":
        samples = spec.labelled()
        if not samples:
            raise DataError("the data set has no labelled images (no image has a mask)", spec.path or spec.root)
        return samples, None
    from terraseg.data.split import load_split

    path = Path(split_file) if split_file is not None else spec.split_file
    if path is None:
        raise ConfigError(f"split {split!r} asked for, but no split file was given and the data set has no "
                          "'split' key (give a split file, or evaluate every labelled image with split 'all')",
                          spec.path)
    lists = load_split(path)
    if split not in lists:
        raise ConfigError(f"split file has no list {split!r} (it has {', '.join(lists)})", path)
    if not lists[split]:
        raise DataError(f"the {split!r} list of the split file is empty; nothing to evaluate", path)
    samples = spec.select(lists[split], what=f"{split!r} list of {path}")
    for s in samples:
        if s.mask is None:
            raise DataError(f"image of the {split!r} list has no mask, so it cannot be evaluated", s.image)
    return samples, path


def default_out_dir(model_path: Path | None, spec, split: str | None) -> Path:
    """Where ``terraseg evaluate`` writes by default: ``eval-<data set>-<split>`` beside the model
    (in the current folder for a built-in model: the installed package is no place for results)."""
    from terraseg.pretrained import PACKAGE_DIR

    builtin = model_path is not None and model_path.resolve().parent == PACKAGE_DIR
    base = model_path.parent if model_path is not None and not builtin else Path.cwd()
    return base / f"eval-{spec.name}-{split or 'all'}"


# --------------------------------------------------------------------------------------------------
# outputs


def _markdown(result: dict[str, Any]) -> str:
    from terraseg.metrics import _fmt, format_table

    model, data, split = result["model"], result["data"], result["split"]
    lines = [
        f"# Evaluation of {model.get('name') or model.get('architecture')} on {data['name']} ({split['name']})",
        "",
        f"- Model: `{model.get('path')}` ({model.get('architecture')}, backend {model.get('backend')})",
        f"- Data set: `{data['dataset']}`",
        f"- Split: {split['name']}" + (f" from `{split['file']}`" if split.get("file") else "")
        + f", {split['images']} image(s), {result['pixels']:,} labelled pixels",
        "- Prediction: whole images at full resolution, tile {tile_size}, overlap {overlap}, TTA {tta}".format(
            **result["settings"]),
        "",
        "## Overall",
        "",
    ]
    table = format_table(result).rstrip("\n").split("\n\n")
    lines += [table[0], "", "## Per class", "", table[1], ""]
    lines += ["## Per image", "", "| Image | Pixels | Pixel accuracy (%) | mIoU (%) |", "| --- | ---: | ---: | ---: |"]
    for im in result["images"]:
        key = im["key"].replace("|", "\\|")
        lines.append(f"| {key} | {_fmt(im['pixels'])} | {_fmt(im['pixel_accuracy'])} | {_fmt(im['miou'])} |")
    for w in result.get("warnings", []):
        lines += ["", f"> Note: {w}"]
    return "\n".join(lines) + "\n"


def write_outputs(result: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``metrics.json``, ``metrics.md`` and ``confusion_matrix.png`` into ``out_dir``.

    All three are written under temporary names and renamed only when all succeeded.
    """
    import json

    from terraseg._io import atomic_path
    from terraseg.metrics import jsonable
    from terraseg.plots import plot_confusion_matrix

    out_dir = Path(out_dir)
    paths = {key: out_dir / name for key, name in OUTPUT_NAMES.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{result['data']['name']} ({result['split']['name']}): % of each true class"
    with contextlib.ExitStack() as stack:
        tmp = {key: stack.enter_context(atomic_path(p)) for key, p in paths.items()}
        record = {k: v for k, v in result.items() if k != "files"}
        tmp["json"].write_text(json.dumps(jsonable(record), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        tmp["markdown"].write_text(_markdown(result), encoding="utf-8")
        plot_confusion_matrix(result["confusion_matrix"], result["class_names"], tmp["confusion_matrix"],
                              normalize=True, title=title)
    return paths


# --------------------------------------------------------------------------------------------------
# the evaluation


def _progress_bars(progress, total_images: int):
    """``(context manager, on_image(done), on_tiles(done, total) or None)`` for the chosen progress mode."""
    if callable(progress) and not isinstance(progress, bool):
        return contextlib.nullcontext(), (lambda done: progress(done, total_images)), None
    if not progress:
        return contextlib.nullcontext(), (lambda done: None), None
    from terraseg._progress import make_progress

    bar = make_progress()
    images = bar.add_task("evaluating images", total=total_images)
    tiles = bar.add_task("  tiles of the image", total=None)

    def on_image(done: int) -> None:
        bar.update(images, completed=done)

    def on_tiles(done: int, total: int) -> None:
        bar.update(tiles, completed=done, total=total)

    return bar, on_image, on_tiles


def _evaluate_image(backend, spec, sample, *, tile, overlap, batch_size, blend, tta, progress, bands=None):
    """``(confusion matrix, (ignored mask pixels, mask pixels))`` of one image: the image streams
    through the engine into a :class:`~terraseg.predict.sinks.ConfusionSink` (the mask is read once)."""
    from terraseg.data.source import check_band_count, open_source
    from terraseg.predict.engine import predict_source
    from terraseg.predict.options import ignore_value
    from terraseg.predict.sinks import ConfusionSink

    mask, _unknown = spec.read_mask(sample)
    ignored = (int(np.count_nonzero(mask >= spec.num_classes)), int(mask.size))
    bands = _input_bands(backend.meta, spec, bands)
    with open_source(sample.image, bands=bands) as source:
        check_band_count(source, backend.meta.in_channels)
        if (source.height, source.width) != mask.shape:
            raise DataError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {source.width}x"
                            f"{source.height}", sample.mask)
        nodata = spec.nodata_value(sample)
        if nodata is not None:
            source.nodata = nodata
        sink = ConfusionSink(lambda top, bottom: mask[top:bottom], spec.num_classes, spec.ignore_index)
        predict_source(backend, source, [sink], tile_size=tile, overlap=overlap, batch_size=batch_size,
                       blend=blend, tta=tta, ignore=ignore_value(backend.meta), progress=progress)
    return sink.matrix.matrix, ignored


def evaluate(model, dataset_yaml, split: str | None = "test", split_file: str | Path | None = None,
             out_dir: str | Path | None = None, *, tile_size: int | None = None,
             overlap: int | float | None = None, batch_size: int = 4, tta: bool | str = False,
             progress: bool | Callable[[int, int], None] = True, backend: str = "auto", device: str = "cpu",
             precision: str = "fp32", blend: str = "cosine", bands=None) -> dict[str, Any]:
    """Evaluate ``model`` on the labelled images of one split of a data set, at full resolution.

    ``model``: a bundle folder, an exported ``.onnx`` file, a :class:`~terraseg.bundle.Bundle` or a
    prediction backend. ``dataset_yaml``: a dataset YAML path (or a loaded ``DatasetSpec``).
    ``split``: a list of the split file (``"test"``, ``"val"``, ...) taken from ``split_file`` or the
    data set's ``split:`` key; ``None`` (or ``"all"``) evaluates every labelled image. ``tile_size``,
    ``overlap``, ``batch_size``, ``tta``, ``blend`` are the prediction settings
    (defaults: the bundle's tile size, a quarter-tile overlap). ``progress``: show bars (``True``),
    nothing (``False``) or a ``callback(done_images, total_images)``.

    Returns the metrics of :func:`terraseg.metrics.compute_metrics` (``miou``, ``pixel_accuracy``,
    ..., ``per_class``; undefined values are NaN) plus ``confusion_matrix`` (``(K, K)`` int64 numpy
    array, rows = true class), ``class_names``, ``images`` (per image: key, pixels, pixel accuracy,
    mIoU), ``model``, ``data``, ``split``, ``settings``, ``seconds``, ``warnings`` and ``files`` (the
    paths written; empty without ``out_dir``). The same content (JSON-safe, NaN -> null) is written
    to ``out_dir/metrics.json``.
    """
    from terraseg import __version__
    from terraseg.data.spec import DatasetSpec, load_spec
    from terraseg.metrics import ConfusionMatrix, compute_metrics
    from terraseg.predict.options import resolve_tta, tile_settings

    t0 = time.time()
    # ---- check everything cheap first: no model weights loaded, nothing written
    meta, model_path, backend_name = _peek_meta(model, backend)
    spec = dataset_yaml if isinstance(dataset_yaml, DatasetSpec) else load_spec(dataset_yaml)
    warnings = _check_compatible(meta, spec, model_path, bands)
    if split == "all":
        split = None
    samples, used_split_file = select_samples(spec, split, split_file)
    if int(batch_size) < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    tile, ov = tile_settings(meta, tile_size, overlap)
    tta_mode = resolve_tta(tta)

    # ---- the model
    if isinstance(model, (str, Path)):
        from terraseg.runtime import load_backend

        # the user's choice (auto: a cached ONNX export of a bundle), not the peeked file kind
        runner = load_backend(model, backend=backend, device=device, precision=precision,
                              calibration=[s.image for s in samples] if precision in ("int8", "auto") else None)
        backend_name, precision = getattr(runner, "name", backend_name), getattr(runner, "precision", precision)
    else:
        from terraseg.predict.backends import as_backend

        runner = as_backend(model, device=device, precision=precision)

    k = spec.num_classes
    names = list(spec.class_names)
    total_cm = ConfusionMatrix(k, spec.ignore_index, names)
    per_image: list[dict[str, Any]] = []
    ignored_pixels = mask_pixels = 0
    bars, on_image, on_tiles = _progress_bars(progress, len(samples))
    with bars:
        for i, sample in enumerate(samples):
            cm, ignored = _evaluate_image(runner, spec, sample, tile=tile, overlap=ov, batch_size=batch_size, bands=bands,
                                          blend=blend, tta=tta_mode, progress=on_tiles)
            ignored_pixels += ignored[0]
            mask_pixels += ignored[1]
            total_cm.add(cm)
            m = compute_metrics(cm, names)
            per_image.append({"key": sample.key, "pixels": m["pixels"], "correct": int(np.trace(cm)),
                              "pixel_accuracy": m["pixel_accuracy"], "miou": m["miou"]})
            on_image(i + 1)

    matrix = total_cm.matrix
    if matrix.sum() == 0:
        raise DataError(f"the masks of the {len(samples)} evaluated image(s) hold no labelled pixel (all are "
                        "ignored or unknown colours); check the classes and ignore colours", spec.path or spec.root)
    if mask_pixels and ignored_pixels / mask_pixels > IGNORED_WARNING_SHARE:
        share = ignored_pixels / mask_pixels
        warnings.append(f"{100 * share:.1f} % of the mask pixels are ignored or have colours no class owns; the "
                        f"scores describe only the remaining {100 * (1 - share):.1f} % (check the classes and "
                        f"ignore colours of {spec.path or spec.root})")
    result: dict[str, Any] = compute_metrics(matrix, names)
    result.update({
        "class_names": names,
        "ignore_index": spec.ignore_index,
        "confusion_matrix": matrix,
        "model": {
            "path": str(model_path) if model_path is not None else None,
            "name": model_path.name if model_path is not None else None,
            "architecture": meta.architecture,
            "options": meta.options,
            "classes": list(meta.classes),
            "in_channels": meta.in_channels,
            "backend": backend_name,
            "precision": precision,
        },
        "data": {"dataset": str(spec.path) if spec.path is not None else None, "name": spec.name,
                 "root": str(spec.root)},
        "split": {"name": split or "all", "file": str(used_split_file) if used_split_file else None,
                  "images": len(samples)},
        "settings": {"tile_size": tile, "overlap": ov, "batch_size": int(batch_size), "tta": tta_mode, "bands": bands,
                     "blend": blend, "device": device},
        "images": per_image,
        "seconds": round(time.time() - t0, 2),
        "warnings": warnings,
        "terraseg_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "files": {},
    })
    if out_dir is not None:
        result["files"] = write_outputs(result, out_dir)
    return result

