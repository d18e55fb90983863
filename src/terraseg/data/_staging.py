"""All-or-nothing output folders: a command that writes many files either writes all or none."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from terraseg._io import temp_prefix


@contextlib.contextmanager
def staged_dir(out_dir: str | Path) -> Iterator[Path]:
    """Yield a hidden staging folder beside ``out_dir``; on success its files are moved into
    ``out_dir`` (created or merged into), on failure it is deleted and ``out_dir`` is left as it was."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    # the name carries the process id: a later run removes stages of killed runs (terraseg._io)
    stage = Path(tempfile.mkdtemp(prefix=temp_prefix(out.name), suffix=".partial", dir=out.parent))
    try:
        yield stage
        out.mkdir(parents=True, exist_ok=True)
        for dirpath, _, files in os.walk(stage):
            rel = Path(dirpath).relative_to(stage)
            (out / rel).mkdir(parents=True, exist_ok=True)
            for f in files:
                os.replace(Path(dirpath) / f, out / rel / f)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def rebase(paths: list[Path], stage: Path, out: Path) -> list[Path]:
    """Paths written under ``stage`` -> their final place under ``out``."""
    return [out / Path(p).relative_to(stage) for p in paths]
