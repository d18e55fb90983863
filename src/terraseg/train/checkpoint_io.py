"""Training checkpoints that are never half-written, and checked before a run resumes from them.

``AtomicCheckpointIO`` (a Lightning ``CheckpointIO`` plugin) writes every checkpoint under a
temporary name in the same folder, flushes it to the disk and renames it into place
(:func:`terraseg._io.atomic_path`). A full disk or a read-only folder therefore leaves the previous
checkpoints intact and ends the run with one :class:`~terraseg.errors.OutputError` line.

``resume_checkpoint`` validates the checkpoint a run is to resume from without running any pickle
code (``torch.load(weights_only=True)``); a damaged one is named in one line that offers the newest
intact checkpoint of the run.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from terraseg.errors import OutputError, TerrasegError

LAST = "last.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint writer, made atomic on local disks (temporary name, fsync, rename)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        import torch

        from terraseg._io import atomic_path, describe_os_error

        path = Path(path)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)  # serialised first, as Lightning does: the file write is the only I/O
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                f.write(buffer.getbuffer())
        except OSError as exc:
            kept = sorted(p.name for p in path.parent.glob("*.ckpt"))
            raise OutputError(f"could not write the checkpoint ({describe_os_error(exc, with_path=False)}); "
                              + (f"the earlier checkpoints are intact: {', '.join(kept)}" if kept
                                 else "no checkpoint was kept"), path) from None


def checkpoint_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a usable training checkpoint, or ``None`` when it is.

    Reads it with ``weights_only=True``: tensors and plain containers only, so a pickle payload is
    refused without being run.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        return "is missing"
    if path.stat().st_size == 0:
        return "is empty"
    if not zipfile.is_zipfile(path):
        return "is truncated, damaged or not a checkpoint (not a complete checkpoint archive)"
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.testzip() is not None:  # checksums of every member: catches damage inside the file
                return "is damaged (a checksum does not match)"
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        return "holds Python objects other than tensors and plain values; refused without running them"
    except (zipfile.BadZipFile, RuntimeError, EOFError, OSError, ValueError):
        return "is truncated or damaged"
    if not isinstance(ckpt, dict) or not {"state_dict", "epoch", "global_step"} <= set(ckpt):
        return "is not a terraseg training checkpoint (it lacks state_dict, epoch or global_step)"
    return None


def newest_intact(folder: str | Path, exclude: Path | None = None) -> Path | None:
    """The most recently written usable checkpoint in ``folder`` (``exclude`` left out)."""
    folder = Path(folder)
    candidates = sorted((p for p in folder.glob("*.ckpt") if p != exclude), key=lambda p: p.stat().st_mtime,
                        reverse=True)
    return next((p for p in candidates if checkpoint_problem(p) is None), None)


def resume_checkpoint(run_dir: Path, ckpt: Path | None = None) -> Path:
    """The checkpoint to resume ``run_dir`` from (``ckpt`` or ``checkpoints/last.ckpt``), validated."""
    from terraseg._io import clean_stale_temporaries

    folder = run_dir / "checkpoints"
    # a killed run can leave a temporary in any folder it writes (checkpoints, plots, bundle, the run itself)
    if run_dir.is_dir():
        for part in [run_dir, *(p for p in run_dir.iterdir() if p.is_dir())]:
            clean_stale_temporaries(part)
    ckpt = ckpt if ckpt is not None else folder / LAST
    problem = checkpoint_problem(ckpt)
    if problem is None:
        return ckpt
    other = newest_intact(folder, exclude=ckpt)
    if other is not None:
        offer = (f"the newest intact checkpoint is {other.name}; continue from it with: "
                 f"terraseg train --resume {other}")
    elif problem == "is missing":
        offer = "nothing to resume (the run stopped before its first validation)"
    else:
        offer = "no other intact checkpoint in the run"
    raise TerrasegError(f"{problem}; {offer}", ckpt)


def remove_failed_run(run_dir: Path) -> bool:
    """Remove the folder of a run that failed before writing any checkpoint (nothing in it can be resumed)."""
    import shutil

    if not run_dir.is_dir() or any((run_dir / "checkpoints").glob("*.ckpt")):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return True


def checkpoint_epoch(path: str | Path) -> int:
    """The epoch a checkpoint was saved in (the resume continues after it)."""
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["epoch"])


__all__ = ["AtomicCheckpointIO", "checkpoint_problem", "newest_intact", "resume_checkpoint", "checkpoint_epoch",
           "remove_failed_run"]
