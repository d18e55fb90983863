"""Which backend runs a model: one place that turns a model reference into a prediction backend.

A model reference is a bundle folder, an ``.onnx`` file, a loaded :class:`~terraseg.bundle.Bundle`
or an existing backend. This layer sits above ``terraseg.predict`` (which only runs backends) and
``terraseg.export`` (which makes ONNX and int8 files), so neither has to import the other.

``backend="auto"`` (the default of ``terraseg predict``, ``terraseg evaluate``, the desktop app and
:func:`predict_file` / :func:`predict_array` here) takes the fastest correct path:

* an ``.onnx`` file runs on ONNX Runtime;
* a bundle folder is exported once to ONNX into the model cache (``terraseg.export.cache``: keyed by
  the bundle's content, written atomically, checked against torch on sizes not seen at export, as
  ``terraseg export`` does) and runs on ONNX Runtime, which measured 2-4x faster than torch on CPU;
* torch runs instead, with one ``warning:`` line, when the architecture does not export or the
  export disagrees with torch (remembered in the cache, so the slow attempt is not repeated), when
  the cache folder cannot be written, or when onnxruntime is missing. ``bf16``, a GPU device and an
  in-memory ``Bundle`` run on torch without a warning (that is where torch is the right path).

``precision="auto"`` measures, once per model (``terraseg.autoprecision``), whether int8 (ONNX) or
bf16 (torch) keeps >= 99.5 % of the fp32 class map on held-out tiles and runs faster; otherwise fp32.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from terraseg.errors import ConfigError, ModelError, first_line
from terraseg.predict.backends import BACKENDS, PRECISIONS

__all__ = ["load_model", "load_backend", "check_choices", "predict_file", "predict_array", "BACKENDS", "PRECISIONS", "CHOICES"]

# What the options accept: a backend or precision, or auto.
CHOICES = {"backend": BACKENDS + ("auto",), "precision": PRECISIONS + ("auto",)}


def check_choices(backend: str, precision: str) -> None:
    """Refuse an unknown backend or precision (before anything is loaded)."""
    if backend not in CHOICES["backend"]:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(CHOICES['backend'])}")
    if precision not in CHOICES["precision"]:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {', '.join(CHOICES['precision'])}")


def warn_once(message: str) -> None:
    """The default ``warn``: a ``logging`` warning where logging is set up (the CLI prints it as one
    ``warning:`` line, the app shows it), else one ``warning:`` line on stderr."""
    logger = logging.getLogger(__name__)
    if logger.hasHandlers():
        logger.warning(message)
    else:
        print(f"warning: {message}", file=sys.stderr, flush=True)


def _is_onnx(path: Path) -> bool:
    from terraseg.bundle import is_onnx_model

    return is_onnx_model(path)


def _bundle_folder(path: Path) -> Path:
    return path.parent if path.name in ("bundle.json", "model.safetensors") else path


def load_backend(model, backend: str = "auto", device: str = "cpu", precision: str = "fp32", *,
                 calibration=None, cache_dir=None, warn: Callable[[str], None] | None = None):
    """A backend for ``model`` (bundle folder, ``.onnx`` file, ``Bundle`` or backend).

    ``backend``: ``"auto"`` (see the module doc), ``"torch"`` or ``"onnx"`` (a bundle is exported
    into the cache first). ``precision``: ``"fp32"``, ``"bf16"`` (torch), ``"int8"`` (ONNX: an fp32
    file is quantised once into the cache, calibrated on ``calibration``) or ``"auto"``.
    ``calibration``: image paths or arrays ``(H, W, bands)`` of the imagery to predict (int8
    calibration and the held-out check of ``precision="auto"``), or normalised tiles
    ``(N, C, h, w)``. ``warn`` receives the one-line reason of a fallback (default: a ``logging``
    warning where logging is set up, as in the CLI, else one ``warning:`` line on stderr).
    The returned backend's ``describe()`` says what runs (and what ``auto`` picked).
    """
    from terraseg.bundle import Bundle

    check_choices(backend, precision)
    warn = warn or warn_once
    if callable(model) and hasattr(model, "meta") and not isinstance(model, Bundle):
        return model
    if isinstance(model, Bundle):
        if backend == "onnx" and model.path is not None:
            model = model.path
        elif backend == "onnx":
            raise ConfigError("an in-memory Bundle has no folder to export; save it or use the torch backend")
        else:  # an in-memory model: torch is what the caller holds
            return _torch(model, device, precision, calibration, cache_dir)
    from terraseg.pretrained import resolve_model

    path = resolve_model(model)  # a path, or a built-in model's packaged bundle
    if _is_onnx(path):
        if backend == "torch":
            raise ConfigError("this is an ONNX model; use the onnx backend (or a bundle folder for torch)", path)
        return _onnx(path, device, precision, calibration, cache_dir)
    path = _bundle_folder(path)
    from terraseg.bundle import read_meta

    read_meta(path)  # a bad bundle.json is one error line here, before any backend is tried
    if backend == "torch":
        return _torch(path, device, precision, calibration, cache_dir)
    if backend == "onnx":
        return _onnx_of_bundle(path, device, precision, calibration, cache_dir)
    # auto, bundle folder
    if precision == "bf16" or str(device) != "cpu":
        return _torch(path, device, precision, calibration, cache_dir)
    from terraseg.bundle import WEIGHTS_NAME
    from terraseg.models.finite import check_finite_file

    if (path / WEIGHTS_NAME).is_file():
        check_finite_file(path / WEIGHTS_NAME)  # a diverged model: one error line, not a fallback warning
    try:
        return _onnx_of_bundle(path, device, precision, calibration, cache_dir)
    except (ModelError, ImportError) as exc:
        if precision == "int8":  # asked for explicitly: only ONNX runs it
            raise
        reason = _reason(exc)
        warn(f"{reason}; running on torch instead (--backend torch skips this check)")
        runner = _torch(path, device, precision, calibration, cache_dir)
        runner.origin = f"fallback: {reason}" + (f"; {runner.origin}" if runner.origin else "")
        return runner


def load_model(model, backend: str = "auto", device: str = "cpu", precision: str = "fp32", **kwargs):
    """A ready-to-run model from a built-in name (``"dubai-landcover"``, see ``terraseg models
    pretrained``), a bundle folder or an ``.onnx`` file: :func:`load_backend` under the name users look
    for. The result goes to :func:`predict_array` / :func:`predict_file`; for the torch module itself,
    ``terraseg.bundle.load_bundle(terraseg.pretrained.resolve_model(name)).model``.
    """
    return load_backend(model, backend, device, precision, **kwargs)


def _reason(exc: BaseException) -> str:
    from terraseg.export.cache import CacheError, ExportFailed

    text = first_line(exc)
    if isinstance(exc, ExportFailed):
        return f"this model does not run on ONNX Runtime ({text})"
    if isinstance(exc, CacheError):
        return f"cannot cache the ONNX export ({text})"
    if isinstance(exc, ImportError):
        return f"ONNX Runtime is not available ({text})"
    return f"the ONNX export cannot be used ({text})"


def _torch(model, device: str, precision: str, calibration, cache_dir):
    from terraseg.predict.backends import TorchBackend

    if precision == "int8":
        raise ConfigError("int8 precision runs on ONNX Runtime; use --backend onnx or auto")
    if precision == "auto":
        from terraseg.autoprecision import choose_torch_precision

        return choose_torch_precision(model, device, calibration, cache_dir)
    return TorchBackend(model, device=device, precision=precision)


def _onnx_of_bundle(path: Path, device: str, precision: str, calibration, cache_dir):
    """The bundle's cached ONNX export on ONNX Runtime (exported and verified on first use)."""
    if precision == "bf16":
        raise ConfigError("bf16 runs on the torch backend; the ONNX backend runs fp32 or int8")
    import onnxruntime  # noqa: F401  (missing: say so before a slow export)

    from terraseg.export.cache import exported_copy
    from terraseg.pretrained import int8_onnx

    shipped = int8_onnx(path) if precision == "int8" else None
    if shipped is not None:  # a built-in model ships its calibrated int8 file: no export, no calibration
        runner = _onnx(shipped, device, precision, calibration, cache_dir)
        runner.origin = f"int8 file shipped with {path.name}"
        return runner

    runner = _onnx(exported_copy(path, cache_dir), device, precision, calibration, cache_dir)
    note = f"cached ONNX export of {path.name}"
    runner.origin = f"{note}; {runner.origin}" if runner.origin else note
    return runner


def _onnx(path: Path, device: str, precision: str, calibration, cache_dir):
    try:
        from terraseg.predict.onnx_backend import OnnxBackend, read_metadata_props, resolve_onnx_path
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("onnx"):
            raise ModelError("the ONNX backend is not available in this installation", path) from None
        raise
    if precision == "bf16":
        raise ConfigError("bf16 runs on the torch backend; the ONNX backend runs fp32 or int8")
    onnx_path = resolve_onnx_path(path)
    import json

    info = json.loads(read_metadata_props(onnx_path).get("terraseg_export", "{}") or "{}")
    if info.get("precision") == "int8":  # an int8 file runs as it is
        return OnnxBackend(onnx_path, precision="int8", device=device)
    if precision == "auto":
        from terraseg.autoprecision import choose_onnx_precision

        return choose_onnx_precision(onnx_path, device, calibration, cache_dir)
    if precision == "int8":
        from terraseg.export.quantize import cached_int8, calibration_tiles
        from terraseg.predict.onnx_backend import read_onnx_meta

        tiles = calibration
        if calibration is not None and not (isinstance(calibration, np.ndarray) and calibration.ndim == 4):
            tiles = calibration_tiles(list(calibration), read_onnx_meta(onnx_path), n=16)
        onnx_path = cached_int8(onnx_path, calibration=tiles, cache_dir=cache_dir)
    return OnnxBackend(onnx_path, precision=precision, device=device)


# ------------------------------------------------------------------- convenience, auto by default


def predict_file(model, input_path, out_dir, options=None, *, backend: str = "auto", precision: str = "fp32",
                 device: str = "cpu", cache_dir=None, **overrides):
    """:func:`terraseg.predict.predict_file` on the fastest correct backend (``backend="auto"``).

    ``model``: bundle folder, ``.onnx`` file, Bundle or backend; ``precision="auto"`` checks int8 /
    bf16 on tiles of ``input_path``. Other arguments as for :func:`terraseg.predict.predict_file`.
    """
    from terraseg.predict.api import predict_file as run

    runner = load_backend(model, backend, device, precision,
                          calibration=[input_path] if precision != "fp32" else None, cache_dir=cache_dir)
    return run(runner, input_path, out_dir, options, **overrides)


def predict_array(model, array, *, backend: str = "auto", precision: str = "fp32", device: str = "cpu",
                  cache_dir=None, **kwargs):
    """:func:`terraseg.predict.predict_array` on the fastest correct backend (``backend="auto"``)."""
    from terraseg.predict.api import predict_array as run

    runner = load_backend(model, backend, device, precision,
                          calibration=[array] if precision != "fp32" else None, cache_dir=cache_dir)
    return run(runner, array, **kwargs)
