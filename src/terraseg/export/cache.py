"""The model cache: ONNX exports of bundles, int8 copies and ``--precision auto`` decisions.

Files are keyed by content, never by name or time: an export by the digest of the bundle's
``bundle.json`` and ``model.safetensors`` (changed weights give a new key, so a stale export is
never used), an int8 copy by the digest of its fp32 file and calibration. Everything is written
atomically, so two processes filling the cache at once both end with whole files.

The folder is ``cache`` when given, else ``$TERRASEG_CACHE_DIR``, else ``$XDG_CACHE_HOME/terraseg``
(``~/.cache/terraseg``). A folder that cannot be written raises :class:`CacheError`; callers on the
``auto`` path fall back to torch rather than write somewhere the user did not choose.

An export that fails (an architecture the exporters cannot convert, or an ONNX graph that disagrees
with torch) is remembered in ``<name>-<key>.failed.json`` with the torch version, so later runs fall
back at once instead of repeating a slow export; a new torch version tries again.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

from terraseg.errors import ModelError

__all__ = ["CacheError", "ExportFailed", "cache_dir", "file_digest", "bundle_digest", "exported_copy",
           "read_record", "write_record"]

# Bumped when the export recipe changes in a way that makes old cached files wrong.
EXPORT_RECIPE = "1"
EXPORTERS = ("torchscript", "dynamo")


class CacheError(ModelError):
    """The cache folder cannot be created or written."""


class ExportFailed(ModelError):
    """The bundle does not export faithfully to ONNX (now, or remembered from an earlier run)."""


def _writable(folder: Path) -> bool:
    # os.access answers for permission bits only (root passes them); a real file tells the truth
    # for read-only mounts, immutable folders and full disks alike.
    probe = folder / f".write-test-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


def cache_dir(path: str | Path | None = None) -> Path:
    """The cache folder (created if needed); :class:`CacheError` when it cannot be written."""
    if path is not None:
        folder = Path(path)
    elif os.environ.get("TERRASEG_CACHE_DIR"):
        folder = Path(os.environ["TERRASEG_CACHE_DIR"])
    else:
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "terraseg"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(f"cannot create the model cache folder ({exc.strerror or exc.__class__.__name__}); "
                         "set TERRASEG_CACHE_DIR to a writable folder", folder) from None
    if not _writable(folder):
        raise CacheError("the model cache folder is not writable; set TERRASEG_CACHE_DIR to a writable folder",
                         folder)
    return folder


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def bundle_digest(bundle_path: str | Path) -> str:
    """16 hex digits of the digest of a bundle folder's metadata and weights."""
    folder = Path(bundle_path)
    if folder.name in ("bundle.json", "model.safetensors"):
        folder = folder.parent
    h = hashlib.sha256(EXPORT_RECIPE.encode())
    for name in ("bundle.json", "model.safetensors"):
        f = folder / name
        if not f.is_file():
            raise ModelError(f"bundle folder has no {name}", folder)
        h.update(name.encode() + file_digest(f).encode())
    return h.hexdigest()[:16]


def read_record(path: Path) -> dict | None:
    """A JSON record of the cache, or None when absent or unreadable (then it is made again)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_record(path: Path, record: dict) -> None:
    from terraseg._io import write_json_atomic

    write_json_atomic(path, record)


def exported_copy(bundle_path: str | Path, cache: str | Path | None = None) -> Path:
    """The verified ONNX export of a bundle folder, made once into the cache (imports torch).

    Raises :class:`ExportFailed` when the bundle does not export faithfully (the failure is
    remembered, see the module doc) and :class:`CacheError` when the cache cannot be written.
    A cache hit neither imports torch nor reads the weights beyond hashing them.
    """
    from importlib.metadata import version

    bundle_path = Path(bundle_path)
    if bundle_path.name in ("bundle.json", "model.safetensors"):
        bundle_path = bundle_path.parent
    folder = cache_dir(cache)
    stem = f"{bundle_path.resolve().name}-{bundle_digest(bundle_path)}"
    out = folder / f"{stem}.onnx"
    if out.is_file():
        return out
    failed = folder / f"{stem}.failed.json"
    torch_version = version("torch").split("+")[0]
    record = read_record(failed)
    if record and record.get("torch_version") == torch_version:
        raise ExportFailed(f"remembered from an earlier run in {failed.name}, delete it to retry: "
                           f"{record.get('reason', 'export failed')}")
    from terraseg.export.onnx import export_onnx

    failures = []
    # The tracer first: it exports a U-Net in seconds where the torch.export-based exporter takes
    # ten times as long, and export_onnx checks either result against torch on unseen sizes.
    for exporter in EXPORTERS:
        try:
            export_onnx(bundle_path, out, exporter=exporter)
            return out
        except ModelError as exc:
            failures.append(str(exc))
    reason = " / ".join(failures)  # each names the bundle and its exporter's problem
    write_record(failed, {"bundle": str(bundle_path.resolve()), "torch_version": torch_version, "reason": reason})
    raise ExportFailed(reason)
