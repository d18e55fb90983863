"""Export a bundle to ONNX: one self-describing file that runs with onnxruntime alone.

The exported graph takes a normalised float32 batch ``image`` of shape ``(N, C, H, W)`` with dynamic
batch, height and width, and returns class probabilities ``probabilities`` ``(N, K, H, W)``
(softmax of the logits, or the multitask model's segmentation head: ``terraseg.models.probabilities``
is part of the exported graph). The bundle metadata (``BundleMeta`` JSON: classes, colours,
normalisation, tile size, ...) travels in the ONNX ``metadata_props`` under the key ``"terraseg"``;
export details (exporter, opset, the measured difference to torch) under ``"terraseg_export"``.
Beside them, the flat keys the Deepness QGIS plugin reads (:func:`deepness_metadata`), so the file
loads in Deepness with the right classes, tile size and normalisation.

Before anything is written the model is checked with ``onnx.checker`` and run with onnxruntime on
random inputs of sizes not seen at export time (including sizes that are not a multiple of the
network stride); it must agree with torch, or the export fails.

torch is imported inside the functions: ``import terraseg.export`` stays light.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

from terraseg.errors import ModelError, first_line

META_KEY = "terraseg"
EXPORT_KEY = "terraseg_export"
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
DEFAULT_OPSET = 18
EXPORTERS = ("auto", "dynamo", "torchscript")
DEEPNESS_OVERLAP_PERCENT = 25  # terraseg predicts with a quarter-tile overlap by default


def _wrapper(model):
    """``model`` followed by ``terraseg.models.probabilities``: the graph outputs probabilities."""
    import torch

    from terraseg import models

    class ProbabilityModel(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, image):
            return models.probabilities(self.net(image))

    return ProbabilityModel(model).eval()


def _export_proto(wrapper, example, exporter: str, opset: int):
    """Run one exporter and return the ``onnx.ModelProto`` (in memory, weights embedded)."""
    import onnx
    import torch

    if exporter == "dynamo":
        # torch.export-based exporter (the default of torch >= 2.9); chatty on stdout, so quieted.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper, (example,), None, dynamo=True, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: "batch", 2: "height", 3: "width"},),
                external_data=False, optimize=True, verbose=False,
            )
        return program.model_proto
    # Legacy TorchScript tracer: traces shape arithmetic, fast, deprecated upstream.
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, (example,), buf, dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                          OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"}},
            do_constant_folding=True,
        )
    return onnx.load_from_string(buf.getvalue())


def _name_dims(proto) -> None:
    """Give the graph input/output dynamic dims plain names (the dynamo exporter writes formulas)."""
    names = {0: "batch", 2: "height", 3: "width"}
    for value in list(proto.graph.input[:1]) + list(proto.graph.output[:1]):
        dims = value.type.tensor_type.shape.dim
        for i, name in names.items():
            if i < len(dims) and not dims[i].HasField("dim_value"):
                dims[i].dim_param = name


def set_metadata(proto, values: dict[str, str]) -> None:
    """Set (replace) string entries of an ONNX model's ``metadata_props``."""
    keep = [p for p in proto.metadata_props if p.key not in values]
    del proto.metadata_props[:]
    for p in keep:
        proto.metadata_props.add(key=p.key, value=p.value)
    for key, value in values.items():
        proto.metadata_props.add(key=key, value=value)


def deepness_metadata(meta, overlap_percent: int = DEEPNESS_OVERLAP_PERCENT) -> dict[str, str]:
    """The Deepness plugin's metadata keys, each value JSON-encoded (the plugin ``json.loads`` them).

    Deepness divides 8-bit pixels by 255, then standardises with ``standardization_mean`` /
    ``standardization_std``; terraseg's mean/std are in raw pixel units, so they are divided by 255
    too: ``(x / 255 - mean / 255) / (std / 255) == (x - mean) / std``. Without mean/std terraseg
    feeds raw pixels, which is mean 0 and std 1/255 in the plugin's units. The plugin's code reads
    the tile size as ``tile_size`` while its documentation says ``tiles_size``: both are written.
    ``resolution`` (cm/px) only when the bundle records its training ground resolution.
    """
    bands = int(meta.in_channels)
    mean = [float(m) / 255.0 for m in (meta.mean if meta.mean is not None else [0.0] * bands)]
    std = [float(s) / 255.0 for s in (meta.std if meta.std is not None else [1.0] * bands)]
    keys = {
        "model_type": "Segmentor",
        "class_names": {str(i): name for i, name in enumerate(meta.classes)},
        "tile_size": int(meta.tile_size),
        "tiles_size": int(meta.tile_size),
        "tiles_overlap": int(overlap_percent),
        "standardization_mean": mean,
        "standardization_std": std,
    }
    resolution = getattr(meta, "resolution", None)  # metres per pixel
    if resolution:
        keys["resolution"] = round(float(resolution) * 100.0, 6)
    return {key: json.dumps(value) for key, value in keys.items()}


def check_shapes(in_channels: int, sample: int) -> list[tuple[int, int, int, int]]:
    """Verification inputs: the export size and sizes never seen at export, off the stride grid."""
    return [
        (2, in_channels, sample, sample),
        (1, in_channels, sample + 17, sample // 2 + 5),
        (3, in_channels, sample // 2 + 11, sample + 3),
    ]


def _verify(proto, wrapper, shapes, seed: int = 0) -> float:
    """Largest absolute difference between onnxruntime and torch over random inputs of ``shapes``."""
    import numpy as np
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    for shape in shapes:
        x = rng.standard_normal(shape, dtype=np.float32)
        with torch.no_grad():
            ref = wrapper(torch.from_numpy(x)).float().numpy()
        out = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        if out.shape != ref.shape:
            raise ModelError(f"ONNX output shape {out.shape} differs from torch {ref.shape} for input {shape}")
        worst = max(worst, float(np.abs(out - ref).max()))
    return worst


def export_onnx(
    bundle_path: str | Path,
    out_path: str | Path,
    opset: int = DEFAULT_OPSET,
    *,
    exporter: str = "auto",
    sample_size: int | None = None,
    atol: float = 1e-3,
) -> Path:
    """Export the bundle at ``bundle_path`` to the ONNX file ``out_path`` (written atomically).

    ``exporter``: ``"dynamo"`` (torch.export based), ``"torchscript"`` (legacy tracer) or ``"auto"``
    (dynamo, then the tracer if dynamo fails or the result disagrees with torch). ``sample_size`` is
    the square example input used for tracing (default: the bundle's tile size, clamped to
    64..256). The file is only written when the ONNX model passes ``onnx.checker`` and its
    probabilities agree with torch within ``atol`` on several sizes, including ones not seen at
    export; the measured largest difference is stored in the metadata (see ``export_info``).
    Raises ``ModelError`` for a bad bundle or a model that does not export faithfully.
    """
    import onnx
    import torch

    from terraseg import __version__
    from terraseg._io import atomic_path
    from terraseg.bundle import load_bundle

    if exporter not in EXPORTERS:
        raise ModelError(f"unknown exporter {exporter!r}; choose one of {', '.join(EXPORTERS)}")
    out_path = Path(out_path)
    if out_path.suffix.lower() != ".onnx":
        raise ModelError("output file must end in .onnx", out_path)
    if not 7 <= int(opset) <= 23:
        raise ModelError(f"opset {opset} is out of the supported range 7..23")
    bundle = load_bundle(bundle_path)
    meta = bundle.meta
    wrapper = _wrapper(bundle.model.float().eval())
    size = int(sample_size or min(max(int(meta.tile_size), 64), 256))
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(2, meta.in_channels, size, size, generator=gen)
    shapes = check_shapes(meta.in_channels, size)

    order = ["dynamo", "torchscript"] if exporter == "auto" else [exporter]
    failures: list[str] = []
    for name in order:
        try:
            proto = _export_proto(wrapper, example, name, int(opset))
            _name_dims(proto)
            onnx.checker.check_model(proto, full_check=True)
            diff = _verify(proto, wrapper, shapes)
        except Exception as exc:  # an exporter failing is a reason to try the next one
            failures.append(f"{name}: {first_line(exc, 300)}")
            continue
        if diff > atol:
            failures.append(f"{name}: ONNX probabilities differ from torch by {diff:.3g} (> {atol:g})")
            continue
        break
    else:
        raise ModelError(f"could not export {meta.architecture!r} to ONNX ({'; '.join(failures)})", bundle_path)

    info = {
        "exporter": name,
        "opset": int(opset),
        "precision": "fp32",
        "max_abs_diff": diff,
        "checked_shapes": [list(s) for s in shapes],
        "torch_version": torch.__version__.split("+")[0],
        "terraseg_version": __version__,
        "source_bundle": str(Path(bundle.path).resolve()),
    }
    set_metadata(proto, {META_KEY: json.dumps(meta.to_json()), EXPORT_KEY: json.dumps(info),
                         **deepness_metadata(meta)})
    proto.producer_name = "terraseg"
    proto.producer_version = __version__
    proto.doc_string = (f"terraseg {meta.architecture}: input {INPUT_NAME} float32 (N, {meta.in_channels}, H, W) "
                        f"normalised; output {OUTPUT_NAME} float32 (N, {meta.num_classes}, H, W)")
    with atomic_path(out_path) as tmp:
        onnx.save_model(proto, str(tmp))
    return out_path


def export_info(path: str | Path) -> dict[str, Any]:
    """The ``terraseg_export`` metadata of an exported file (exporter, opset, max_abs_diff, ...)."""
    from terraseg.predict.onnx_backend import read_metadata_props

    raw = read_metadata_props(path).get(EXPORT_KEY)
    if raw is None:
        raise ModelError("ONNX file was not written by terraseg export (no terraseg_export metadata)", path)
    return json.loads(raw)
