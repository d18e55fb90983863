"""The model on the workers: sent once per worker, loaded there once, shared by all its tasks.

A :class:`ModelPayload` carries the files the client's backend runs from (a bundle's
``bundle.json`` + ``model.safetensors`` for torch, the ``.onnx`` file for ONNX Runtime, already
exported or quantised by ``terraseg.runtime.load_backend``), so workers need no access to the model
path. :class:`ModelPlugin` is a ``distributed.WorkerPlugin``: registering it sends it to every worker
(and to workers that join later) once; ``setup`` writes the files into the worker's local folder
and loads the backend with the device and precision asked for, with ``cores // workers on this
host`` threads (cores: ``terraseg._threads.inference_threads``) so that N workers do not
oversubscribe the cores. Tasks find the backend with
:func:`worker_backend`.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from distributed import WorkerPlugin

from terraseg.errors import ConfigError


@dataclass
class ModelPayload:
    """What a worker needs to rebuild the client's backend."""

    kind: str  # "torch", "onnx" or "object" (any other picklable backend, sent as it is)
    device: str = "cpu"
    precision: str = "fp32"
    files: dict[str, bytes] = field(default_factory=dict)
    obj: object = None
    options: dict = field(default_factory=dict)  # TorchBackend's optimise / compile

    @classmethod
    def from_backend(cls, backend) -> "ModelPayload":
        from terraseg.predict.backends import TorchBackend
        from terraseg.predict.onnx_backend import OnnxBackend  # light: onnxruntime is imported when used

        if isinstance(backend, TorchBackend):
            from terraseg.bundle import META_NAME, WEIGHTS_NAME

            folder = Path(backend.bundle.path)
            import torch

            files = {n: (folder / n).read_bytes() for n in (META_NAME, WEIGHTS_NAME)}
            options = {"optimise": getattr(backend, "memory_format", None) == torch.channels_last,
                       "compile": bool(getattr(backend, "compiled", False))}
            return cls("torch", str(backend.device), backend.precision, files, options=options)
        if isinstance(backend, OnnxBackend):
            path = Path(backend.path)
            # external weights (model.onnx.data) travel with the graph
            files = {p.name: p.read_bytes() for p in path.parent.glob(f"{path.name}*") if p.is_file()}
            return cls("onnx", str(backend.device), backend.precision, files)
        return cls("object", obj=backend)

    @property
    def digest(self) -> str:
        h = hashlib.sha256(f"{self.kind}|{self.device}|{self.precision}|{sorted(self.options.items())}".encode())
        if self.kind == "object":
            import cloudpickle

            h.update(cloudpickle.dumps(self.obj))
        for name in sorted(self.files):
            h.update(name.encode())
            h.update(self.files[name])
        return h.hexdigest()

    def load(self, folder: Path, threads: int):
        """The backend, from files written into ``folder``, running ``threads`` threads."""
        for name, data in self.files.items():
            (folder / name).write_bytes(data)
        if self.kind == "torch":
            from terraseg.predict.backends import TorchBackend

            return TorchBackend(folder, device=self.device, precision=self.precision, threads=threads,
                                **self.options)
        if self.kind == "onnx":
            from terraseg.predict.onnx_backend import OnnxBackend

            onnx = [n for n in self.files if n.endswith(".onnx")]
            return OnnxBackend(folder / onnx[0], precision=self.precision, device=self.device, threads=threads)
        if self.kind == "object":
            return self.obj
        raise ConfigError(f"unknown model payload {self.kind!r}")


class ModelPlugin(WorkerPlugin):
    """Loads the model once on each worker; ``backend`` is then used by every task there."""

    def __init__(self, payload: ModelPayload, per_host: dict[str, int]):
        self.payload = payload
        self.per_host = dict(per_host)
        self.name = f"terraseg-model-{payload.digest[:16]}"
        self.backend = None
        self.threads = 1
        self.folder: str | None = None

    def setup(self, worker) -> None:
        from distributed.comm import get_address_host

        from terraseg._threads import inference_threads

        sharing = self.per_host.get(get_address_host(worker.address), 1)
        self.threads = max(1, inference_threads() // sharing)
        self.folder = tempfile.mkdtemp(prefix="terraseg-model-", dir=worker.local_directory)
        self.backend = self.payload.load(Path(self.folder), self.threads)

    def teardown(self, worker) -> None:
        self.backend = None
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


def worker_backend(plugin_name: str):
    """The backend the :class:`ModelPlugin` called ``plugin_name`` loaded on this worker."""
    from distributed import get_worker

    return get_worker().plugins[plugin_name].backend
