"""Export: a bundle to a self-describing ONNX file, and int8 quantisation of such files.

``export.onnx`` converts (needs torch); ``export.quantize`` makes int8 copies with onnxruntime
(no torch); ``export.cache`` keeps exports, int8 copies and precision choices
keyed by content. Prediction code (``terraseg.predict``) never imports this package: the choice of which
file runs a model (a cached export, an int8 copy) is made by ``terraseg.runtime``.
"""

from __future__ import annotations

from terraseg._lazy import lazy_exports

_EXPORTS = {
    "export_onnx": "onnx",
    "export_info": "onnx",
    "set_metadata": "onnx",
    "deepness_metadata": "onnx",
    "quantize_int8": "quantize",
    "cached_int8": "quantize",
    "calibration_tiles": "quantize",
    "random_calibration": "quantize",
    "exported_copy": "cache",
    "cache_dir": "cache",
    "bundle_digest": "cache",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
