"""int8 ONNX models for fast CPU prediction (onnxruntime static quantisation, QDQ format).

Static quantisation needs calibration tiles to measure activation ranges. They come, in order of
preference, from real imagery the caller passes (normalised tiles ``(N, C, h, w)``), or from smooth
random tiles (multi-scale noise with the per-band statistics of normalised imagery), which need no
data. Weights are int8 per output channel, activations uint8 (the fast u8s8 path of onnxruntime
on AVX2 / AVX512-VNNI CPUs). Every operator onnxruntime can quantise is quantised (convolutions and
the activations, pooling, concatenations between them), except the final softmax, which stays float
so probabilities keep their resolution.

Quantised models are cached (``cached_int8``): keyed by the fp32 file's content and the calibration,
in the model cache of ``terraseg.export.cache``.
Imports only numpy, onnx and onnxruntime (no torch).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from terraseg.errors import ModelError, first_line

# None: every operator ONNX Runtime can quantise (Conv, ConvTranspose, MatMul, Relu, MaxPool, Concat,
# Add, Resize, ...), so whole chains stay int8; quantising only Conv/ConvTranspose/MatMul left float
# Relu/Concat between them and measured 1.25x slower on a U-Net. The softmax is always excluded.
QUANTIZED_OPS = None


def random_calibration(in_channels: int, n: int = 8, size: int = 128, seed: int = 0) -> np.ndarray:
    """Smooth random normalised tiles ``float32 (n, C, size, size)``: noise summed over several scales.

    Normalised imagery has roughly zero mean and unit variance per band with strong spatial
    correlation; white noise alone would under-represent the flat regions and edges convolutions
    respond to, so coarse blocks (1/32, 1/8, 1/2 of the tile) are upsampled and added to fine noise.
    """
    rng = np.random.default_rng(seed)
    tiles = np.zeros((n, in_channels, size, size), np.float32)
    for cell, weight in ((32, 1.0), (8, 0.6), (2, 0.4), (1, 0.2)):
        g = -(-size // cell)
        coarse = rng.standard_normal((n, in_channels, g, g)).astype(np.float32)
        # Bands of real images are correlated: mix a shared component into every band.
        coarse = 0.7 * coarse[:, :1] + 0.3 * coarse
        tiles += weight * np.repeat(np.repeat(coarse, cell, axis=2), cell, axis=3)[:, :, :size, :size]
    tiles -= tiles.mean(axis=(0, 2, 3), keepdims=True)
    tiles /= tiles.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    return tiles


def calibration_tiles(images, meta, n: int = 16, size: int | None = None, seed: int = 0) -> np.ndarray:
    """Normalised calibration tiles ``float32 (n, C, size, size)`` cut at random from ``images``.

    ``images``: raster paths (read by windows, any size) or arrays ``(H, W, bands)``; ``meta``: the
    model's ``BundleMeta`` (band count, mean/std). Tiles are spread evenly over the images.
    """
    import contextlib

    from rasterio.windows import Window

    from terraseg.data.source import check_band_count, open_source
    from terraseg.errors import DataError
    from terraseg.normalisation import Normaliser

    images = list(images)
    if not images:
        raise DataError("no calibration images given")
    size = int(size or min(max(int(meta.tile_size), 64), 256))
    rng = np.random.default_rng(seed)
    normaliser = Normaliser.from_meta(meta)
    tiles = []
    with contextlib.ExitStack() as stack:
        # the same sources, band selection, validity and normalisation as prediction
        sources = [stack.enter_context(open_source(item, bands=getattr(meta, "band_indexes", None)))
                   for item in images]
        for source in sources:
            check_band_count(source, meta.in_channels)
        for i in range(n):
            source = sources[i % len(sources)]
            h, w = source.height, source.width
            th, tw = min(size, h), min(size, w)
            row, col = int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1))
            pixels, valid = source.read_masked(Window(col, row, tw, th))
            tile = normaliser(pixels)
            if valid is not None:
                tile[~valid] = 0.0  # invalid pixels reach the model as the band mean, as in prediction
            pad = ((0, size - th), (0, size - tw), (0, 0))
            tiles.append(np.pad(tile, pad, mode="reflect" if min(th, tw) > 1 else "edge").transpose(2, 0, 1))
    return np.stack(tiles).astype(np.float32)


class _Reader:
    """onnxruntime ``CalibrationDataReader`` over an array of tiles, one tile per batch."""

    def __init__(self, input_name: str, tiles: np.ndarray):
        self.input_name = input_name
        self.tiles = np.ascontiguousarray(tiles, dtype=np.float32)
        self.i = 0

    def get_next(self):
        if self.i >= len(self.tiles):
            return None
        item = {self.input_name: self.tiles[self.i:self.i + 1]}
        self.i += 1
        return item

    def rewind(self):
        self.i = 0


def quantize_int8(
    model_path: str | Path,
    out_path: str | Path,
    calibration: np.ndarray | None = None,
    *,
    num_tiles: int = 8,
    tile_size: int | None = None,
    seed: int = 0,
) -> Path:
    """Write a statically quantised (QDQ, int8 weights / uint8 activations) copy of ``model_path``.

    ``calibration``: normalised tiles ``(N, C, h, w)`` from representative imagery; when ``None``,
    ``num_tiles`` smooth random tiles of ``tile_size`` (default: the model's tile size, at most 256)
    are used. The terraseg metadata is carried over, with ``precision: int8`` in the export info.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from terraseg._io import atomic_path
    from terraseg.predict.onnx_backend import EXPORT_KEY, read_onnx_meta

    model_path = Path(model_path)
    out_path = Path(out_path)
    meta = read_onnx_meta(model_path)
    proto = onnx.load(str(model_path))
    props = {p.key: p.value for p in proto.metadata_props}
    input_name = proto.graph.input[0].name
    if calibration is None:
        size = int(tile_size or min(max(int(meta.tile_size), 64), 256))
        calibration = random_calibration(meta.in_channels, num_tiles, size, seed)
        source = {"kind": "random", "tiles": int(num_tiles), "size": size, "seed": seed}
    else:
        calibration = np.asarray(calibration, dtype=np.float32)
        if calibration.ndim != 4 or calibration.shape[1] != meta.in_channels:
            raise ModelError(f"calibration tiles must be (N, {meta.in_channels}, h, w), got {calibration.shape}")
        source = {"kind": "tiles", "tiles": int(len(calibration)), "size": list(calibration.shape[2:])}
    # The final softmax (and anything after the last convolution) stays float.
    exclude = [n.name for n in proto.graph.node if n.op_type == "Softmax"]

    with tempfile.TemporaryDirectory(prefix="terraseg-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:  # shape inference + graph optimisation before quantising (recommended by onnxruntime)
            quant_pre_process(str(model_path), str(pre), skip_symbolic_shape=True)
        except Exception:
            shutil.copyfile(model_path, pre)
        raw = Path(tmp) / "int8.onnx"
        try:
            quantize_static(
                str(pre), str(raw), _Reader(input_name, calibration),
                quant_format=QuantFormat.QDQ, op_types_to_quantize=QUANTIZED_OPS, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=exclude,
                calibration_providers=["CPUExecutionProvider"],
            )
        except Exception as exc:
            raise ModelError(f"int8 quantisation failed ({first_line(exc)})", model_path) from None
        q = onnx.load(str(raw))
        info = json.loads(props.get(EXPORT_KEY, "{}"))
        info.update({"precision": "int8", "calibration": source, "quantized_ops": QUANTIZED_OPS or "all",
                     "fp32_source": str(model_path.resolve())})
        props[EXPORT_KEY] = json.dumps(info)
        del q.metadata_props[:]
        for key, value in props.items():
            q.metadata_props.add(key=key, value=value)
        with atomic_path(out_path) as part:
            onnx.save_model(q, str(part))
    return out_path


def cached_int8(
    model_path: str | Path,
    calibration: np.ndarray | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """The int8 copy of ``model_path`` from the cache (see ``terraseg.export.cache``), quantising it
    on first use. Keyed by the fp32 file's content and the calibration tiles."""
    from terraseg.export.cache import cache_dir as cache_folder
    from terraseg.export.cache import file_digest

    model_path = Path(model_path)
    key = hashlib.sha256(file_digest(model_path).encode())
    if calibration is not None:
        key.update(np.ascontiguousarray(calibration, dtype=np.float32).tobytes())
    out = cache_folder(cache_dir) / f"{model_path.stem}-{key.hexdigest()[:16]}.int8.onnx"
    if not out.is_file():
        quantize_int8(model_path, out, calibration)
    return out
