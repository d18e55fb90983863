"""terraseg: semantic segmentation of satellite and aerial imagery.

The package imports nothing heavy at top level: ``import terraseg`` does not import torch, so the
ONNX prediction backend and the data tools stay light.
"""

__version__ = "0.1.0"

from terraseg.errors import TerrasegError  # noqa: E402,F401

# Convenience API on the fastest correct backend (backend="auto", see terraseg.runtime); imported
# on first use so that ``import terraseg`` stays light.
_LAZY = {"predict_file": "terraseg.runtime", "predict_array": "terraseg.runtime", "load_backend": "terraseg.runtime",
         "load_model": "terraseg.runtime"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'terraseg' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
