"""Resuming a batch: which inputs are finished, the temporaries a killed run left, and the one line
reported for a failed input. Shared by the single-process batch and the Dask runner."""

from __future__ import annotations

from pathlib import Path

from terraseg.errors import TerrasegError, first_line


def is_finished(paths: dict[str, Path]) -> bool:
    """Whether every output of an input exists (outputs are renamed into place only when all succeeded)."""
    return all(Path(p).exists() for p in paths.values())


def remove_stale_temporaries(paths: dict[str, Path]) -> list[Path]:
    """Delete the temporaries of ``paths`` left by killed runs (a running process's are kept)."""
    from terraseg._io import clean_stale_temporaries

    removed = []
    by_folder: dict[Path, list[str]] = {}
    for p in paths.values():
        by_folder.setdefault(Path(p).parent, []).append(Path(p).stem)
    for folder, names in by_folder.items():
        removed += clean_stale_temporaries(folder, names)
    return removed


def failure_message(path, exc: BaseException) -> str:
    """The one line reported for a file that failed with ``exc``."""
    if isinstance(exc, TerrasegError):
        return str(exc) if exc.path else f"{path}: {exc}"
    return f"{path}: {type(exc).__name__}: {first_line(exc, 400)}"
