"""A failed command removes what it created; a command that stages files first removes the stale
temporaries that a killed run of the same command left (only its own naming pattern, only of dead
processes)."""

from __future__ import annotations

import os

from terraseg._io import temp_prefix

from .helpers import listing, one_line, run

DEAD_PID = 2 ** 22 + 12345  # above Linux's default pid_max (4194304): no such process


def _stale(folder, name, suffix, pid=DEAD_PID, is_dir=False):
    path = folder / f".{name}.{pid}-abcd1234{suffix}"
    if is_dir:
        (path / "images").mkdir(parents=True)
        (path / "images" / "half.tif").write_bytes(b"II*\0")
    else:
        path.write_bytes(b"half a raster")
    return path


def test_predict_removes_stale_part_files(tiny_bundle, sample_dataset, tmp_path, capsys):
    out = tmp_path / "pred"
    out.mkdir()
    stale = _stale(out, "scene_000_classes", ".part.png")
    user = out / ".notes.part.txt"  # a user's hidden file that merely looks similar
    user.write_text("mine")
    image = sorted((sample_dataset.parent / "images").iterdir())[0]
    code, _, err = run(["predict", tiny_bundle, image, "-o", out, "--no-overlay", "--no-areas"], capsys)
    assert code == 0, err
    assert not stale.exists() and user.exists()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "scene_000_classes.png", "scene_000_color.png"]


def test_chip_removes_stale_partial_folders(sample_dataset, tmp_path, capsys):
    stale = _stale(tmp_path, "chips", ".partial", is_dir=True)
    other = _stale(tmp_path, "other-output", ".partial", is_dir=True)  # another output's: left alone
    code, _, err = run(["data", "chip", sample_dataset, "-o", tmp_path / "chips", "--size", "80"], capsys)
    assert code == 0, err
    assert not stale.exists() and other.exists()
    assert len(list((tmp_path / "chips").rglob("*.png"))) == 2 * 6 * 4  # images and masks, 4 chips each


def test_temporaries_carry_the_process_id_and_live_ones_are_kept(tmp_path):
    from terraseg._io import clean_stale_temporaries

    assert temp_prefix("x") == f".x.{os.getpid()}-"
    dead = _stale(tmp_path, "x", ".part.tif")
    live = _stale(tmp_path, "x", ".part.tif", pid=1)  # pid 1 runs: another process may still write it
    old_style = tmp_path / ".x.abcd1234.part.tif"  # no process id: from an older terraseg, stale
    old_style.write_bytes(b"")
    assert sorted(clean_stale_temporaries(tmp_path)) == sorted([dead, old_style])
    assert live.exists()


def test_failed_int8_export_removes_the_fp32_file(tiny_bundle, tmp_path, capsys):
    bad = tmp_path / "calib.png"
    bad.write_text("not an image")
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run(["export", tiny_bundle, "--onnx", out / "m.onnx", "--int8", out / "m-int8.onnx",
                        "--calibrate", bad], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "calib.png" in lines[0], err
    assert listing(out) == []


def test_full_disk_while_generating_a_sample(small_disk, capsys):
    code, _, err = run(["data", "sample", small_disk / "sample", "-n", "20", "--size", "256"], capsys)
    line = one_line(err)
    assert code == 2 and "no space left on the device" in line and str(small_disk / "sample") in line
    assert listing(small_disk) == []


def test_failed_train_leaves_no_run_folder(sample_dataset, tmp_path, capsys):
    runs = tmp_path / "runs"
    code, _, err = run(["train", f"data.dataset={sample_dataset}", "model.options={base_channels: 4, depth: 2}",
                        "trainer.accelerator=no-such-accelerator", "--output", runs, "--name", "r"], capsys)
    line = one_line(err)
    assert code == 2 and "accelerator" in line
    assert listing(runs) == []


def test_resume_removes_what_a_killed_run_left_in_any_run_folder(tmp_path):
    """A run killed while writing its curves left ``plots/.curves.<pid>-….part.png`` (seen in the
    kill-and-resume test); resuming removes it, as it removes half-written checkpoints."""
    from terraseg.train.checkpoint_io import resume_checkpoint
    from terraseg.errors import TerrasegError

    run_dir = tmp_path / "run"
    for sub in ("checkpoints", "plots", "bundle"):
        (run_dir / sub).mkdir(parents=True)
    stale = [_stale(run_dir / "plots", "curves", ".part.png"), _stale(run_dir / "checkpoints", "last", ".part.ckpt"),
             _stale(run_dir / "bundle", "model", ".part.safetensors"), _stale(run_dir, "metrics", ".part.csv")]
    mine = run_dir / "plots" / "curves.png"
    mine.write_bytes(b"a finished plot")
    try:
        resume_checkpoint(run_dir)
    except TerrasegError:
        pass  # no checkpoint to resume from here: only the cleaning is under test
    assert [p for p in stale if p.exists()] == [] and mine.exists()
