"""Output locations are checked before any work starts, in every command that writes.

Each case: exit status 2, one ``error:`` line naming the location and the problem, no traceback, and
the folder around the output exactly as it was before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import listing, one_line, run

# command -> (kind of output, argv builder given the output path)
COMMANDS = {
    "data convert-masks": ("folder", lambda c, out: ["data", "convert-masks", c.dataset, "-o", out]),
    "data colorize": ("folder", lambda c, out: ["data", "colorize", c.dataset, c.mask, "-o", out]),
    "data chip": ("folder", lambda c, out: ["data", "chip", c.dataset, "-o", out, "--size", "64"]),
    "data sample": ("folder", lambda c, out: ["data", "sample", out, "-n", "1", "--size", "32"]),
    "data split": ("file", lambda c, out: ["data", "split", c.dataset, "-o", out]),
    "data stats --json": ("file", lambda c, out: ["data", "stats", c.dataset, "--json", out]),
    "data inspect -o": ("file", lambda c, out: ["data", "inspect", c.dataset.parent, "-o", out]),
    "data inspect --json": ("file", lambda c, out: ["data", "inspect", c.dataset.parent, "--no-yaml", "--json", out]),
    "evaluate --out": ("folder", lambda c, out: ["evaluate", c.bundle, "--data", c.dataset, "--split", "all",
                                                 "-o", out]),
    "predict --out": ("folder", lambda c, out: ["predict", c.bundle, c.image, "-o", out]),
    "export --onnx": ("file", lambda c, out: ["export", c.bundle, "--onnx", out]),
    "export --int8": ("file", lambda c, out: ["export", c.bundle, "--onnx", c.work / "ok.onnx", "--int8", out]),
    "train --output": ("folder", lambda c, out: ["train", f"data.dataset={c.dataset}", "--output", out,
                                                 "--name", "run"]),
}


class Ctx:
    def __init__(self, dataset: Path, bundle: Path, work: Path):
        self.dataset, self.bundle, self.work = dataset, bundle, work
        self.image = sorted((dataset.parent / "images").iterdir())[0]
        self.mask = sorted((dataset.parent / "masks").iterdir())[0]


@pytest.fixture
def ctx(sample_dataset, tiny_bundle, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    return Ctx(sample_dataset, tiny_bundle, work)


def _name(kind: str) -> str:
    return "out" if kind == "folder" else "out.onnx"


def _check(ctx, capsys, command, out, watched: Path, expect: str, named: Path):
    before_data = listing(ctx.dataset.parent)
    before = listing(watched)
    kind, argv = COMMANDS[command]
    code, _, err = run(argv(ctx, out), capsys)
    line = one_line(err)
    assert code == 2, err
    assert expect in line and str(named) in line, line
    assert listing(watched) == before
    assert listing(ctx.dataset.parent) == before_data


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_parent_is_a_file(ctx, capsys, command):
    kind, _ = COMMANDS[command]
    blocker = ctx.work / "a-file"
    blocker.write_text("not a folder")
    _check(ctx, capsys, command, blocker / _name(kind), ctx.work, "it is a file, not a folder", blocker)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_wrong_kind_of_existing_output(ctx, capsys, command):
    kind, _ = COMMANDS[command]
    out = ctx.work / _name(kind)
    if kind == "folder":
        out.write_text("a file where the output folder should go")
        # --output of train is the folder that holds the run folders
        expect = ("it is a file, not a folder" if command == "train --output"
                  else "is a file, but an output folder is to be written here")
    else:
        (out / "inside").mkdir(parents=True)
        expect = "is a folder, but a file is to be written here"
    _check(ctx, capsys, command, out, ctx.work, expect, out)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_read_only_file_system(ctx, capsys, command, readonly_dir):
    kind, _ = COMMANDS[command]
    _check(ctx, capsys, command, readonly_dir / _name(kind), readonly_dir, "read-only file system", readonly_dir)


def test_stats_write_into_a_read_only_dataset(sample_dataset, tmp_path, capsys, readonly_bind):
    ro = readonly_bind(sample_dataset.parent)
    before = listing(ro)
    code, _, err = run(["data", "stats", ro / "dataset.yaml", "--write"], capsys)
    line = one_line(err)
    assert code == 2 and "read-only file system" in line and str(ro) in line
    assert listing(ro) == before


def test_not_enough_space_for_the_export(tiny_bundle, small_disk, capsys, tmp_path):
    # a bundle whose weights are larger than the disk the ONNX file is to go to: refused before exporting
    import shutil

    big = tmp_path / "big-bundle"
    shutil.copytree(tiny_bundle, big)
    with open(big / "model.safetensors", "ab") as f:
        f.truncate(3_000_000)  # the size counts, not the content: the check runs before anything is read
    code, _, err = run(["export", big, "--onnx", small_disk / "model.onnx"], capsys)
    line = one_line(err)
    assert code == 2 and "not enough free space" in line and str(small_disk) in line
    assert listing(small_disk) == []
