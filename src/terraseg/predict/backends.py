"""Inference backends: one protocol for torch and ONNX Runtime.

A backend has ``.meta`` (a :class:`terraseg.bundle.BundleMeta`) and is called with an already
normalised float32 batch ``(N, C, h, w)``; it returns float32 class probabilities ``(N, K, h, w)``.
The prediction engine, the evaluator and the GUI only use this protocol, so any backend works
everywhere. ``TorchBackend`` lives here; ``OnnxBackend`` lives in ``terraseg.predict.onnx_backend``
and is imported only when asked for (so the ONNX path never imports torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from terraseg.errors import ConfigError, ModelError

BACKENDS = ("torch", "onnx")
PRECISIONS = ("fp32", "bf16", "int8")


@runtime_checkable
class Backend(Protocol):
    meta: Any  # terraseg.bundle.BundleMeta

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """Runs a bundle's torch model. ``precision="bf16"`` uses ``torch.autocast`` (CPU or CUDA)."""

    def __init__(self, bundle, device: str = "cpu", precision: str = "fp32"):
        import torch

        from terraseg.bundle import Bundle, load_bundle

        if precision not in ("fp32", "bf16"):
            if precision == "int8":
                raise ConfigError("int8 precision needs the ONNX backend (--backend onnx)")
            raise ConfigError(f"unknown precision {precision!r} for the torch backend; choose fp32 or bf16")
        device = str(device)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but CUDA is not available on this machine")
        if device != "cpu" and not device.startswith("cuda"):
            raise ConfigError(f"unknown device {device!r}; choose cpu or cuda")
        if not isinstance(bundle, Bundle):
            bundle = load_bundle(bundle, device=device)
        self.bundle = bundle
        self.meta = bundle.meta
        self.device = torch.device(device)
        self.precision = precision
        self.model = bundle.model.eval().to(self.device)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        from terraseg.models import probabilities

        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        with torch.inference_mode():
            if self.precision == "bf16":
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                    probs = probabilities(self.model(x))
            else:
                probs = probabilities(self.model(x))
        return probs.float().cpu().numpy()

    def __repr__(self) -> str:
        return f"TorchBackend({self.meta.architecture}, device={self.device}, precision={self.precision})"


def as_backend(model, device: str = "cpu", precision: str = "fp32"):
    """A backend for ``model``: a backend is returned as is, a ``Bundle`` or bundle folder runs on
    torch, an ``.onnx`` file on ONNX Runtime (as exported). Choosing a faster path for a bundle, or
    quantising, is ``terraseg.runtime.load_backend``'s job."""
    from terraseg.bundle import Bundle  # light: no torch

    if isinstance(model, Bundle):
        return TorchBackend(model, device=device, precision=precision)
    if callable(model) and hasattr(model, "meta"):
        return model
    if isinstance(model, (str, Path)):
        path = Path(model)
        if path.suffix.lower() == ".onnx":
            from terraseg.predict.onnx_backend import OnnxBackend

            return OnnxBackend(path, precision=precision, device=device)
        return TorchBackend(path, device=device, precision=precision)
    raise ModelError(f"expected a backend, a Bundle or a model path, got {type(model).__name__}")
