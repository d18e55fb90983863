"""Helpers for the bad-input catalogue: run the CLI, check the one-line message, list what is left."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from terraseg.cli import main


def run(args, capsys) -> tuple[int, str, str]:
    """The CLI in-process: ``(exit status, stdout, stderr)``."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def run_subprocess(args, **kw) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    p = subprocess.run([sys.executable, "-m", "terraseg", *map(str, args)], capture_output=True, text=True, env=env,
                       **kw)
    return p.returncode, p.stdout, p.stderr


def one_line(err: str, kind: str = "error") -> str:
    """The single non-empty stderr line, which starts with ``kind:``; no traceback anywhere."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{kind}: "), err
    return lines[0]


def listing(folder: Path) -> list[str]:
    """Every path below ``folder`` (relative), hidden ones included: what a command left behind."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
