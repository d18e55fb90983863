"""Prediction: full-resolution sliding-window inference on scenes of any size.

Public API (imported lazily; ``import terraseg.predict`` imports neither torch nor rasterio)::

    from terraseg.predict import predict_array, predict_file, predict_batch, as_backend

* ``predict_array(model, array)`` -> ``Prediction(classes, confidence, probabilities)``
* ``predict_file(model, input_path, out_dir, ...)`` -> ``{output kind: Path}`` (streaming)
* ``predict_batch(model, inputs, out_dir, ...)`` -> ``BatchResult`` (many files, resume)
* ``as_backend(model)`` -> backend (bundle: torch, ``.onnx``: ONNX Runtime); choosing the fastest
  path, cached exports and int8 copies are ``terraseg.runtime.load_backend``'s job
"""

from __future__ import annotations

from terraseg._lazy import lazy_exports

_EXPORTS = {
    "Prediction": "api",
    "PredictionCancelled": "engine",
    "predict_array": "api",
    "predict_file": "api",
    "predict_source": "engine",
    "output_paths": "options",
    "PredictOptions": "options",
    "Backend": "backends",
    "TorchBackend": "backends",
    "as_backend": "backends",
    "OnnxBackend": "onnx_backend",
    "TileGrid": "tiler",
    "tile_windows": "tiler",
    "window_2d": "blend",
    "predict_batch": "batch",
    "BatchResult": "batch",
    "expand_inputs": "batch",
    "area_report": "areas",
    "vectorize": "vectorize",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
