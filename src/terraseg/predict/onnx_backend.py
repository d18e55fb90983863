"""ONNX Runtime prediction backend: runs an exported terraseg model without torch.

``OnnxBackend(path)`` follows the backend protocol of ``terraseg.predict``: ``.meta`` is the
``BundleMeta`` stored in the ONNX metadata by ``terraseg export`` and
``backend(batch float32 (N, C, h, w), already normalised) -> float32 (N, K, h, w)`` probabilities.

This module imports only numpy and onnxruntime (never torch), so ``terraseg predict --backend onnx``
and the standalone desktop app run on machines without torch. ``precision="int8"`` runs a
file quantised by ``terraseg.export.quantize`` runs as int8; this module never quantises or exports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from terraseg.bundle import BundleMeta
from terraseg.errors import DataError, ModelError, first_line
from terraseg.schemas._validate import parse_json

META_KEY = "terraseg"
EXPORT_KEY = "terraseg_export"
ONNX_NAME = "model.onnx"
PRECISIONS = ("fp32", "int8")


def _session_options(threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One operator at a time, each on every physical core (terraseg._threads): parallel operators
    # would only split the same cores between them.
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = int(threads)
    # Worker threads sleep between operators instead of spinning: when other work shares the cores,
    # a spinning thread burns the time slice its partner needs, and one 256 px tile took 0.9-1.2 s
    # on 2 threads with spinning against 0.09 s without (2 loaded cores, benchmarks/peers.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _default_providers(device: str = "cpu") -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if str(device).startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise ModelError("device 'cuda' asked for, but this onnxruntime has no CUDA provider")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def read_metadata_props(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict (weights are never loaded)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("ONNX model file not found", path)
    from terraseg.predict.onnx_metadata import read_props

    try:  # a few hundred bytes, without importing onnx (about a second)
        return read_props(path)
    except (ValueError, OSError):
        pass  # not plain protobuf as expected: let onnx / onnxruntime say what is wrong
    try:
        import onnx
    except ImportError:  # the standalone app may ship onnxruntime only
        onnx = None
    try:
        if onnx is not None:
            proto = onnx.load(str(path), load_external_data=False)
            return {p.key: p.value for p in proto.metadata_props}
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), _session_options(1), providers=["CPUExecutionProvider"])
        return dict(session.get_modelmeta().custom_metadata_map)
    except Exception as exc:  # protobuf / runtime errors for a damaged or foreign file
        raise ModelError(f"unreadable ONNX model ({exc.__class__.__name__})", path) from None


def read_onnx_meta(path: str | Path) -> BundleMeta:
    """The ``BundleMeta`` stored in an ONNX file by ``terraseg export`` (no torch, no session)."""
    return _meta_from_props(read_metadata_props(path), path)


def _meta_from_props(props: dict[str, str], path) -> BundleMeta:
    raw = props.get(META_KEY)
    if raw is None:
        raise ModelError("ONNX model carries no terraseg metadata; export it with `terraseg export`", path)
    d = parse_json(raw, path, ModelError, f"terraseg metadata ('{META_KEY}') JSON in the ONNX model",
                   invalid="terraseg metadata in the ONNX model is not valid JSON")
    if not isinstance(d, dict):
        raise ModelError("terraseg metadata in the ONNX model is not a JSON object", path)
    return BundleMeta.from_json(d, path)


def _export_props(props: dict[str, str]) -> dict[str, Any]:
    try:
        info = parse_json(props.get(EXPORT_KEY, "{}"), error=ModelError)
    except ModelError:
        return {}
    return info if isinstance(info, dict) else {}


def resolve_onnx_path(path: str | Path) -> Path:
    """An ``.onnx`` file as given, or the ``model.onnx`` inside a folder.

    A bundle folder without ``model.onnx`` needs an export first (torch): this backend does not do
    it, so that it never imports torch; ``terraseg.runtime.load_backend`` or ``terraseg export`` does.
    """
    p = Path(path)
    if p.is_dir():
        inside = p / ONNX_NAME
        if inside.is_file():
            return inside
        if (p / "bundle.json").is_file():
            raise ModelError("this is a terraseg bundle, not an ONNX file; export it first with "
                             "`terraseg export BUNDLE model.onnx` (or use --backend auto / torch)", p)
        raise ModelError(f"folder holds neither {ONNX_NAME} nor a terraseg bundle", p)
    if p.name in ("bundle.json", "model.safetensors"):
        return resolve_onnx_path(p.parent)
    if not p.is_file():
        raise ModelError("ONNX model file not found", p)
    return p


class OnnxBackend:
    """Class probabilities from an exported ONNX model through onnxruntime.

    ``path``: an ``.onnx`` file written by ``terraseg export`` (or a folder holding ``model.onnx``).
    ``precision`` must match the file: an int8 file (``terraseg export --int8``) runs as int8; asking
    for int8 from an fp32 file is refused here (``terraseg.runtime.load_backend`` quantises and caches
    a copy first). ``providers`` defaults to the CPU provider (CUDA with
    ``device="cuda"``); ``threads`` is the number of cores to use (default: one per physical core,
    ``terraseg._threads``).

    On the CPU a batch of several tiles runs as ``threads`` concurrent single-threaded runs of one
    tile each (``parallel_tiles``): a convolution split over cores waits for the slowest core at every
    operator, whole tiles per core do not; measured 1.1-1.6x the tiles per second of one intra-op
    parallel run on 2 cores (``benchmarks/peers.py``), most when other work shares the cores. Tiles
    that do not fill every thread (a single tile, the last of an uneven batch) run on ``session``,
    whose operators use ``threads`` intra-op threads; ``tiles_at_once`` tells the tile grid how many
    run side by side, so that it can avoid such tiles.
    """

    name = "onnx"

    def __init__(
        self,
        path: str | Path,
        precision: str = "fp32",
        providers: Sequence[str] | None = None,
        *,
        device: str = "cpu",
        threads: int | None = None,
        parallel_tiles: bool = True,
    ) -> None:
        import threading

        import onnxruntime as ort

        if precision not in PRECISIONS:
            raise ModelError(f"unknown precision {precision!r} for the ONNX backend; choose fp32 or int8")
        self.source_path = resolve_onnx_path(path)
        props = read_metadata_props(self.source_path)
        self.meta: BundleMeta = _meta_from_props(props, self.source_path)
        file_precision = _export_props(props).get("precision", "fp32")
        if precision == "int8" and file_precision != "int8":
            raise ModelError("this ONNX file is fp32; make an int8 copy with `terraseg export --int8` "
                             "(or let terraseg.runtime.load_backend quantise it)", self.source_path)
        self.precision = file_precision if file_precision in PRECISIONS else "fp32"
        self.path = Path(self.source_path)
        self.device = device
        self.origin = ""  # set by terraseg.runtime (e.g. "cached export of bundle X")
        if threads is None:
            from terraseg._threads import inference_threads

            threads = inference_threads()
        self.threads = int(threads)
        self.providers = list(providers) if providers else _default_providers(device)
        try:
            self.session = ort.InferenceSession(str(self.path), _session_options(threads), providers=self.providers)
        except Exception as exc:
            raise ModelError(f"onnxruntime cannot load the model ({first_line(exc)})", self.path) from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"expected an ONNX model with one input, found {len(inputs)}", self.path)
        self.input_name = inputs[0].name
        dims = list(inputs[0].shape or [])
        # a file exported with a fixed height and width takes only that size: tiles are not fitted
        self.fixed_input_size = (tuple(dims[2:4]) if len(dims) == 4 and all(isinstance(d, int) and d > 0
                                                                             for d in dims[2:4]) else None)
        self.output_name = self.session.get_outputs()[0].name
        on_cpu = self.providers[0] == "CPUExecutionProvider"
        self.parallel_tiles = bool(parallel_tiles) and self.threads > 1 and on_cpu
        self.tiles_at_once = self.threads if self.parallel_tiles else 1
        self._tile_session = None  # single-threaded, shared by the concurrent runs (made on first use)
        self._pool = None
        self._lock = threading.Lock()

    def _run_tiles_in_parallel(self, batch: np.ndarray) -> np.ndarray:
        if self._tile_session is None:
            import onnxruntime as ort
            from concurrent.futures import ThreadPoolExecutor

            with self._lock:
                if self._tile_session is None:
                    self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="terraseg-onnx")
                    self._tile_session = ort.InferenceSession(str(self.path), _session_options(1),
                                                              providers=self.providers)
        session, names, feed = self._tile_session, [self.output_name], self.input_name
        # one whole tile per run and thread: a fresh session's first run of each input shape is slow
        # (its memory is planned and touched), so runs of 2 tiles cost more than 2 runs of 1 over a
        # predict run (docs/benchmarks/peers.md). The tiles left over when the batch does not divide
        # evenly run on the intra-op session afterwards (3 tiles on 2 cores: 2 in parallel, then 1 on
        # both cores, instead of 2 + 1 in parallel with one core idle for a tile's time)
        n = batch.shape[0]
        even = n - n % self.threads
        outs = list(self._pool.map(lambda i: session.run(names, {feed: batch[i:i + 1]})[0], range(even)))  # GIL released
        if even < n:
            outs.append(self.session.run(names, {feed: np.ascontiguousarray(batch[even:])})[0])
        return np.concatenate(outs)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``float32 (N, K, h, w)`` for a normalised batch ``float32 (N, C, h, w)``."""
        batch = np.asarray(batch)
        if batch.ndim != 4 or batch.shape[1] != self.meta.in_channels:
            raise DataError(f"model expects a batch (N, {self.meta.in_channels}, h, w), got shape {tuple(batch.shape)}")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self.parallel_tiles and batch.shape[0] >= self.threads:
            return np.asarray(self._run_tiles_in_parallel(batch), dtype=np.float32)
        out = self.session.run([self.output_name], {self.input_name: batch})[0]
        return np.asarray(out, dtype=np.float32)

    def __repr__(self) -> str:
        return f"OnnxBackend({str(self.source_path)!r}, precision={self.precision!r}, providers={self.providers})"

    def describe(self) -> str:
        """One line for logs and the app's model panel: backend, precision, device, threads, origin."""
        where = f"{self.threads} threads" if self.providers[0] == "CPUExecutionProvider" else self.providers[0]
        if self.parallel_tiles:
            where += " (tiles in parallel)"
        text = f"onnx {self.precision}, {where}"
        return f"{text} ({self.origin})" if self.origin else text

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "path": str(self.path), "precision": self.precision,
                "providers": self.providers, "threads": self.threads}
