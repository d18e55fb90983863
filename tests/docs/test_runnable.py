"""Every docs block marked ``<!-- runnable -->`` runs, in a fresh copy of the docs working folder.

Shell blocks run with ``bash -e -o pipefail`` and the venv's ``terraseg`` first on PATH; Python
blocks with this interpreter. ``<!-- runnable: dubai -->`` blocks need the Dubai data set at
``../shared/datasets/dubai-mbrsc`` and skip, saying so, without it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from docs_blocks import ROOT, runnable_blocks

DUBAI = ROOT.parent / "shared" / "datasets" / "dubai-mbrsc"
LANGS = {"bash": "shell", "sh": "shell", "shell": "shell", "python": "python", "py": "python"}
BLOCKS = runnable_blocks()


def _params():
    for block in BLOCKS:
        marks = [pytest.mark.dubai] if block.needs == "dubai" else []
        yield pytest.param(block, id=block.id, marks=marks)


def test_blocks_are_marked_sensibly():
    assert BLOCKS, "no runnable docs block found"
    for block in BLOCKS:
        assert block.lang in LANGS, f"{block.id}: a runnable block must be bash or python, not {block.lang!r}"
        assert block.needs in (None, "dubai"), f"{block.id}: unknown requirement {block.needs!r}"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("block", _params())
def test_runnable_block(block, docs_workdir, docs_env):
    if block.needs == "dubai" and not (DUBAI / "Tile 1" / "masks").is_dir():
        pytest.skip(f"needs the Dubai data set at {DUBAI} (../shared/datasets/dubai-mbrsc beside the project)")
    kind = LANGS[block.lang]
    script = docs_workdir / ("block.sh" if kind == "shell" else "block.py")
    script.write_text(block.code, encoding="utf-8")
    command = ["bash", "-e", "-o", "pipefail", str(script)] if kind == "shell" else [sys.executable, str(script)]
    done = subprocess.run(command, cwd=docs_workdir, env=docs_env, capture_output=True, text=True, timeout=280)
    if done.returncode != 0:
        pytest.fail(f"{block.id} exited with status {done.returncode}\n--- block ---\n{block.code}"
                    f"--- stdout (end) ---\n{done.stdout[-3000:]}\n--- stderr (end) ---\n{done.stderr[-3000:]}",
                    pytrace=False)
