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
    """Runs a bundle's torch model. ``precision="bf16"`` uses ``torch.autocast`` (CPU or CUDA).

    ``optimise`` (default on) prepares the model for inference: batch norms folded into their
    convolutions (``terraseg.predict.fusion``, kept only when the result matches) and the
    ``channels_last`` memory layout, which oneDNN's CPU convolutions and cuDNN's tensor cores run
    fastest; calls run under ``torch.inference_mode``. ``compile`` wraps the model in
    ``torch.compile`` (off by default: on the benchmark machine it did not pay for its compile time,
    see README, "Prediction speed"). ``threads``: intra-op threads (default: one per physical core,
    ``terraseg._threads``).
    """

    name = "torch"

    def __init__(self, bundle, device: str = "cpu", precision: str = "fp32", *, optimise: bool = True,
                 compile: bool = False, threads: int | None = None):
        import torch

        from terraseg._threads import inference_threads
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
        self.threads = int(threads or inference_threads())
        if device == "cpu" and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        self.bundle = bundle
        self.meta = bundle.meta
        self.device = torch.device(device)
        self.precision = precision
        self.origin = ""  # set by terraseg.runtime when it chose this backend (e.g. a fallback)
        self.fused = 0
        self.memory_format = torch.contiguous_format
        model = bundle.model.eval().to(self.device)
        if optimise:
            from terraseg.predict.fusion import fuse_conv_bn

            size = min(max(int(self.meta.tile_size), 64), 128)
            example = torch.randn(1, self.meta.in_channels, size, size, generator=torch.Generator().manual_seed(0))
            model, self.fused = fuse_conv_bn(model, example.to(self.device))
            self.memory_format = torch.channels_last
            model = model.to(memory_format=self.memory_format)
        self.compiled = bool(compile)
        self.model = torch.compile(model, dynamic=True) if compile else model

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        from terraseg.models import probabilities

        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        x = x.contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            if self.precision == "bf16":
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                    probs = probabilities(self.model(x))
            else:
                probs = probabilities(self.model(x))
            probs = probs.float().contiguous()
        return probs.cpu().numpy()

    def describe(self) -> str:
        """One line for logs and the app's model panel: backend, precision, device, threads, origin."""
        where = f"{self.threads} threads" if self.device.type == "cpu" else str(self.device)
        parts = [f"torch {self.precision}, {where}"]
        if self.fused:
            parts.append(f"{self.fused} batch norms folded")
        if self.compiled:
            parts.append("torch.compile")
        text = ", ".join(parts)
        return f"{text} ({self.origin})" if self.origin else text

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
        from terraseg.bundle import is_onnx_model

        if is_onnx_model(path):
            from terraseg.predict.onnx_backend import OnnxBackend

            return OnnxBackend(path, precision=precision, device=device)
        return TorchBackend(path, device=device, precision=precision)
    raise ModelError(f"expected a backend, a Bundle or a model path, got {type(model).__name__}")
