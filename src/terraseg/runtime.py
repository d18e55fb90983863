"""Which backend runs a model: one place that turns a model reference into a prediction backend.

A model reference is a bundle folder (torch), an ``.onnx`` file (ONNX Runtime), a loaded
:class:`~terraseg.bundle.Bundle` or an existing backend. This layer sits above ``terraseg.predict``
(which only runs backends) and ``terraseg.export`` (which makes ONNX and int8 files), so neither has
to import the other: an ONNX run of a bundle, or an int8 run of an fp32 file, goes through a cached
export or quantisation made here.
"""

from __future__ import annotations

from pathlib import Path

from terraseg.errors import ConfigError, ModelError
from terraseg.predict.backends import BACKENDS, PRECISIONS

__all__ = ["load_backend", "BACKENDS", "PRECISIONS"]


def _is_onnx(path: Path) -> bool:
    return path.suffix.lower() == ".onnx" or (path.is_dir() and (path / "model.onnx").is_file()
                                               and not (path / "bundle.json").is_file())


def load_backend(model, backend: str = "auto", device: str = "cpu", precision: str = "fp32", *,
                 calibration=None, cache_dir=None):
    """A backend for ``model`` (bundle folder, ``.onnx`` file, ``Bundle`` or backend).

    ``backend``: ``"torch"``, ``"onnx"`` or ``"auto"`` (ONNX Runtime for ``.onnx`` files, torch for
    bundles). ``precision``: ``"fp32"``, ``"bf16"`` (torch) or ``"int8"`` (ONNX: an fp32 file is
    quantised once into the cache, calibrated on ``calibration`` tiles when given).
    """
    from terraseg.bundle import Bundle
    from terraseg.predict.backends import TorchBackend

    if backend not in BACKENDS + ("auto",):
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)} or auto")
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if callable(model) and hasattr(model, "meta") and not isinstance(model, Bundle):
        return model
    if isinstance(model, Bundle):
        if backend == "onnx":
            model = model.path
        else:
            return TorchBackend(model, device=device, precision=precision)
    path = Path(model)
    if backend == "auto":
        backend = "onnx" if _is_onnx(path) else "torch"
    if backend == "torch":
        if _is_onnx(path):
            raise ConfigError("this is an ONNX model; use the onnx backend (or a bundle folder for torch)", path)
        return TorchBackend(path, device=device, precision=precision)
    return _onnx_backend(path, device, precision, calibration, cache_dir)


def _onnx_backend(path: Path, device: str, precision: str, calibration, cache_dir):
    try:
        from terraseg.predict.onnx_backend import OnnxBackend, read_metadata_props, resolve_onnx_path
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("onnx"):
            raise ModelError("the ONNX backend is not available in this installation", path) from None
        raise
    if precision == "bf16":
        raise ConfigError("bf16 runs on the torch backend; the ONNX backend runs fp32 or int8")
    if path.is_dir() and (path / "bundle.json").is_file() and not (path / "model.onnx").is_file():
        from terraseg.export.quantize import exported_copy

        path = exported_copy(path, cache_dir)
    onnx_path = resolve_onnx_path(path)
    if precision == "int8":
        import json

        info = json.loads(read_metadata_props(onnx_path).get("terraseg_export", "{}") or "{}")
        if info.get("precision") != "int8":
            from terraseg.export.quantize import cached_int8

            onnx_path = cached_int8(onnx_path, calibration=calibration, cache_dir=cache_dir)
    return OnnxBackend(onnx_path, precision=precision, device=device)
