"""Opening models for the desktop app (no Qt here).

A model is a terraseg bundle (folder, ``bundle.json`` or ``model.safetensors``) or an exported
``.onnx`` file. Classes and colours always come from the model's metadata. A bundle's metadata is
read at once (cheap, no torch import) and its torch weights are loaded on the first prediction, in the
worker thread, so opening a bundle never freezes the window and an ONNX-only install never imports
torch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terraseg.errors import ModelError, TerrasegError, first_line

MODEL_SUFFIXES = (".onnx", ".json", ".safetensors")


@dataclass
class ModelDoc:
    path: Path
    kind: str  # "bundle" (runs on the auto backend, terraseg.runtime), "onnx" or "custom" (injected)
    meta: Any  # terraseg.bundle.BundleMeta
    backend: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def label(self) -> str:
        path = self.path.parent if self.path.name in ("bundle.json", "model.safetensors") else self.path
        # a run's bundle folder is called "bundle": the run folder names the model
        name = path.parent.name if path.name == "bundle" and path.parent.name else path.name
        return f"{name} ({self.meta.architecture}, {self.kind})"

    @property
    def runtime(self) -> str:
        """What runs the model and at which precision: the backend's own ``describe()`` line, e.g.
        ``onnx int8, 2 threads``. A bundle's backend is chosen by ``terraseg.runtime`` on the first run."""
        b = self.backend
        if b is not None and hasattr(b, "describe"):
            return b.describe()
        if b is None:
            return "chosen on the first run (ONNX Runtime through a cached export, else PyTorch)"
        return f"{type(b).__name__} · {getattr(b, 'precision', 'fp32')}"

    def get_backend(self):
        """The loaded backend (loads torch weights on first use; call from the worker thread)."""
        with self._lock:
            if self.backend is None:
                from terraseg.runtime import load_backend

                try:
                    self.backend = load_backend(self.path, backend="auto" if self.kind == "bundle" else self.kind)
                except TerrasegError:
                    raise
                except Exception as exc:  # a corrupt file that the loader did not recognise
                    raise ModelError(f"not a usable model ({exc.__class__.__name__}: {first_line(exc)})", self.path) from None
            return self.backend


def open_model(path: str | Path) -> ModelDoc:
    """Open a bundle or an ONNX file; raises ``ModelError`` with one sentence if it is not a model."""
    from terraseg.bundle import is_onnx_model
    from terraseg.pretrained import resolve_model

    path = resolve_model(path)

    if is_onnx_model(path):
        from terraseg.runtime import load_backend

        try:
            backend = load_backend(path, backend="onnx")
        except TerrasegError:
            raise
        except Exception as exc:
            raise ModelError(f"not a readable ONNX model ({first_line(exc)})", path) from None
        return ModelDoc(path=path, kind="onnx", meta=backend.meta, backend=backend)
    from terraseg.bundle import read_meta

    meta = read_meta(path)
    return ModelDoc(path=path, kind="bundle", meta=meta)
