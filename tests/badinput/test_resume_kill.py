"""SIGKILL at a random point, run again: the outputs are byte for byte those of an uninterrupted run,
nothing is duplicated or left behind, and the re-run finishes (pytest-timeout, never a timing assertion).

Each case runs the command once uninterrupted into a folder, moves that folder aside (so absolute
paths written into the outputs are the same), starts the command again in a real process, kills it
with SIGKILL when a seeded random trigger fires (a random delay, or the first temporary or output
file of some kind appearing), and runs it once more.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from .helpers import listing

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": SRC}


def _cli(args, cwd, timeout=240) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "terraseg", *map(str, args)], capture_output=True, text=True,
                       env=_env(), cwd=cwd, timeout=timeout)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _kill_at(args, cwd, trigger, seed: int, max_delay: float = 6.0) -> list[str]:
    """Start the command, SIGKILL it when ``trigger()`` is true or after a seeded random delay of up to
    ``max_delay`` seconds (whichever comes first), wait until its child processes are gone too; returns
    what fired."""
    rng = random.Random(seed)
    delay = rng.uniform(0.5, max_delay)
    proc = subprocess.Popen([sys.executable, "-m", "terraseg", *map(str, args)], env=_env(), cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    start = time.monotonic()
    fired = "finished first"
    while proc.poll() is None:
        if trigger():
            time.sleep(rng.uniform(0, 0.3))
            fired = "trigger"
            break
        if time.monotonic() - start > delay:
            fired = f"delay {delay:.1f} s"
            break
        time.sleep(0.02)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)  # the CLI process only, as `kill -9 PID` does
    proc.wait()
    _wait_for_group(proc.pid)
    return [fired]


def _wait_for_group(pgid: int, patience: float = 60.0) -> None:
    """Orphaned workers of the killed process (Dask) notice their parent is gone and exit; a run must
    not depend on that, but the test should not leave them to compete with the next case."""
    end = time.monotonic() + patience
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(pgid, signal.SIGKILL)


def _temporaries(folder: Path) -> list[str]:
    return [p for p in listing(folder) if ".part" in p or ".partial" in p or ".blocks" in p]


def _scenes(folder: Path, n: int = 4) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    folder.mkdir()
    rng = np.random.default_rng(7)
    for i in range(n):
        with rasterio.open(folder / f"scene{i}.tif", "w", driver="GTiff", width=300, height=260, count=3,
                           dtype="uint8", crs="EPSG:32640", transform=from_origin(300000 + 200 * i, 2800000, 0.5, 0.5),
                           nodata=0) as dst:
            dst.write(rng.integers(1, 255, (3, 260, 300), dtype=np.uint8))
    return folder


# ------------------------------------------------------------------ predict
@pytest.mark.timeout(900)
@pytest.mark.parametrize("workers", [None, 2], ids=["one-process", "workers-2"])
@pytest.mark.parametrize("seed", [1, 2])
def test_predict_killed_and_run_again(tmp_path, tiny_bundle, workers, seed):
    inputs = _scenes(tmp_path / "scenes")
    out = tmp_path / "out"
    args = ["predict", tiny_bundle, inputs, "-o", out, "--backend", "onnx", "--vector", "gpkg", "--confidence"]
    if workers:
        args += ["--workers", workers]
    assert _cli(args, tmp_path).returncode == 0
    reference, ref_listing = _digests(out), listing(out)
    shutil.move(out, tmp_path / "reference")
    kinds = ["_classes", "_polygons", ".part", "_overlay"]
    kind = kinds[seed % len(kinds)]
    fired = _kill_at(args, tmp_path, lambda: out.is_dir() and any(kind in p.name for p in out.iterdir()), seed)

    again = _cli(args, tmp_path)
    assert again.returncode == 0, (fired, again.stderr)
    assert listing(out) == ref_listing, fired  # nothing duplicated, no temporary left
    assert _digests(out) == reference, fired
    assert _temporaries(tmp_path) == []


@pytest.mark.timeout(600)
def test_predict_killed_twice_in_a_row(tmp_path, tiny_bundle):
    # a second kill during the resumed run: its own temporaries and the first run's are both cleaned
    inputs = _scenes(tmp_path / "scenes", n=3)
    out = tmp_path / "out"
    args = ["predict", tiny_bundle, inputs, "-o", out, "--backend", "onnx"]
    assert _cli(args, tmp_path).returncode == 0
    reference = _digests(out)
    shutil.move(out, tmp_path / "reference")
    for seed in (11, 12):
        _kill_at(args, tmp_path, lambda: out.is_dir() and any(".part" in p.name for p in out.iterdir()), seed)
    assert _cli(args, tmp_path).returncode == 0
    assert _digests(out) == reference and _temporaries(tmp_path) == []


# ------------------------------------------------------------------ data convert-masks
@pytest.mark.timeout(600)
@pytest.mark.parametrize("seed", [3, 4])
def test_convert_masks_killed_and_run_again(tmp_path, sample_dataset, seed):
    ds = tmp_path / "ds"
    shutil.copytree(sample_dataset.parent, ds)
    from PIL import Image

    masks = sorted((ds / "masks").glob("*.png"))  # larger masks so that the kill can land inside the work
    for m in masks:
        Image.open(m).resize((1600, 1600), Image.Resampling.NEAREST).save(m)
    for m in masks:
        for k in range(3):
            shutil.copy(m, m.with_name(f"{m.stem}-copy{k}.png"))
            img = ds / "images" / (m.stem + ".png")
            Image.open(img).resize((1600, 1600)).save(img.with_name(f"{m.stem}-copy{k}.png"))
    out = tmp_path / "index"
    args = ["data", "convert-masks", ds / "dataset.yaml", "-o", out]
    assert _cli(args, tmp_path).returncode == 0
    reference, ref_listing = _digests(out), listing(out)
    shutil.move(out, tmp_path / "reference")
    _kill_at(args, tmp_path, lambda: any(p.name.endswith(".partial") for p in tmp_path.iterdir()) and seed % 2 == 1,
             seed)
    assert _cli(args, tmp_path).returncode == 0
    assert listing(out) == ref_listing and _digests(out) == reference
    assert _temporaries(tmp_path) == []


# ------------------------------------------------------------------ train --resume
TRAIN = {
    "data": {"crop_size": 32, "batch_size": 2, "samples_per_epoch": 4, "val_crop_size": 32},
    "model": {"name": "unet", "options": {"base_channels": 4, "depth": 2}},
    "trainer": {"max_epochs": 3, "accelerator": "cpu", "seed": 0, "deterministic": True, "precision": "32-true",
                "log_every_n_steps": 1},
    "schedule": {"warmup_steps": 0},
}
#: Files that differ between any two runs by design: TensorBoard event files (named and stamped with
#: the wall time; a resumed run adds its own, as TensorBoard expects) and the Lightning checkpoints
#: (they hold the callbacks' timers and the loop's progress counters, which count the restart).
BY_DESIGN = ("tensorboard/", "checkpoints/")


@pytest.mark.timeout(900)
def test_train_resume_after_kill(tmp_path, sample_dataset):
    import yaml

    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({**TRAIN, "data": {**TRAIN["data"], "dataset": str(sample_dataset)}}))
    args = ["train", config, "-o", tmp_path / "runs", "--name", "r"]
    run = tmp_path / "runs" / "r"
    assert _cli(args, tmp_path, timeout=600).returncode == 0
    reference = _digests(run)
    shutil.move(tmp_path / "runs", tmp_path / "reference")
    last = run / "checkpoints" / "last.ckpt"
    # killed in the second epoch, after its first training step: last.ckpt of epoch 0 exists
    _kill_at(args, tmp_path, lambda: last.exists() and _metric_rows(run / "metrics.csv", epoch=1) >= 1, seed=5,
             max_delay=500)
    assert last.exists(), "killed before the first checkpoint"
    resumed = _cli(["train", "--resume", run], tmp_path, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    got = _digests(run)
    assert sorted(k for k in got if not k.startswith(BY_DESIGN)) == \
        sorted(k for k in reference if not k.startswith(BY_DESIGN))
    same = {k for k in reference if not k.startswith(BY_DESIGN) and got.get(k) == reference[k]}
    # the weights, the scores, the config, the plots and the metrics table are those of the uninterrupted run
    assert {"bundle/model.safetensors", "best_metrics.json", "config.yaml", "metrics.csv",
            "plots/confusion_matrix.png", "plots/curves.png"} <= same, set(reference) - same
    # bundle.json differs only in "created", the time the bundle was written
    a = json.loads((tmp_path / "reference" / "r" / "bundle" / "bundle.json").read_text())
    b = json.loads((run / "bundle" / "bundle.json").read_text())
    assert {k for k in a if a[k] != b.get(k)} <= {"created"}
    assert len(list((run / "checkpoints").glob("last*.ckpt"))) == 1 and _temporaries(tmp_path) == []


def _metric_rows(path: Path, epoch: int) -> int:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0
    return sum(1 for ln in lines[1:] if ln.split(",", 1)[0] == str(epoch))
