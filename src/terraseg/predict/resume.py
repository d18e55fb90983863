"""What a batch needs to resume and report, shared by the single-process loop and the cluster run.

A file is finished when all its outputs exist; temporaries of an interrupted run are deleted before a
file is predicted again; a failing file is reported in one line.
"""

from __future__ import annotations

import glob
from pathlib import Path

from terraseg.errors import TerrasegError, first_line


def is_finished(paths: dict[str, Path]) -> bool:
    return all(p.exists() for p in paths.values())


def remove_stale_temporaries(paths: dict[str, Path]) -> None:
    """Delete temporaries of ``paths`` left by an interrupted run (``terraseg._io.atomic_path`` names)."""
    for p in paths.values():
        stem, suffix = glob.escape(p.stem), glob.escape(p.suffix)
        # a writer that itself writes atomically inside a temporary name (vector files) nests the names
        for pattern in (f".{stem}.*.part{suffix}", f"..{stem}.*.part.*.part{suffix}"):
            for stale in p.parent.glob(pattern):
                stale.unlink(missing_ok=True)


def failure_message(path, exc: BaseException) -> str:
    """The one line reported for a file that failed with ``exc``."""
    if isinstance(exc, TerrasegError):
        return str(exc) if exc.path else f"{path}: {exc}"
    return f"{path}: {type(exc).__name__}: {first_line(exc, 400)}"
