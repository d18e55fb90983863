"""Two-process DDP on CPU (gloo) through the command line, as a user would run it on two GPUs.

Lightning's ``ddp`` strategy starts the second process by re-running the same ``terraseg train``
command. Checked: both ranks train on different crops (the summed training pixel count equals the
pixels of both ranks' crops, recomputed here from the saved config), validation metrics are summed
over ranks (they equal an independent evaluation of the bundle on every validation image), the
bundle is written once, and ``--resume`` of the DDP run continues it.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.timeout(600)

DDP = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TERRASEG_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "terraseg", "train", *args], capture_output=True, text=True,
                          env=env, timeout=540)


def _rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _crops_of_rank(cfg: dict, rank: int, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The training items rank ``rank`` of 2 draws in ``epoch``, rebuilt from the run's config."""
    from terraseg.data.spec import load_spec
    from terraseg.train.data import SegmentationDataModule, select_samples

    spec = load_spec(cfg["data"]["dataset"])
    train, val = select_samples(spec, cfg["data"], cfg["trainer"]["seed"])
    dm = SegmentationDataModule({**cfg, "data": {**cfg["data"], "num_workers": 0}}, spec, train, val)
    loader = dm.train_loader(rank, 2)
    loader.sampler.set_epoch(epoch)
    return [(x, y) for xb, yb in loader for x, y in zip(xb, yb)]


def _independent_val_miou(bundle_dir, cfg) -> float:
    """mIoU of the bundle on every validation image, computed here with scikit-learn."""
    from sklearn.metrics import confusion_matrix

    from terraseg.bundle import load_bundle
    from terraseg.data.spec import load_spec
    from terraseg.train.data import select_samples

    spec = load_spec(cfg["data"]["dataset"])
    _, val = select_samples(spec, cfg["data"], cfg["trainer"]["seed"])
    bundle = load_bundle(bundle_dir)
    mean, std = np.array(bundle.meta.mean, np.float32), np.array(bundle.meta.std, np.float32)
    k = spec.num_classes
    cm = np.zeros((k, k), np.int64)
    for s in val:
        image, mask = spec.read_pair(s)
        x = torch.from_numpy(((image.astype(np.float32) - mean) / std).transpose(2, 0, 1)[None].copy())
        with torch.no_grad():
            pred = bundle.model(x).argmax(1)[0].numpy()
        keep = mask < k
        cm += confusion_matrix(mask[keep], pred[keep], labels=list(range(k)))
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    return float(np.mean(inter[union > 0] / union[union > 0]))


def test_two_process_ddp_trains_resumes_and_reduces_metrics(tiny_overrides, tmp_path):
    ov = [o for o in tiny_overrides if not o.startswith(("trainer.max_epochs", "data.val_crop_size", "output.name"))]
    # 8 crops per epoch: 4 per rank, one batch of 4 each; validation on whole images. Rotations fill
    # their corners with ignore, so every crop has its own count of labelled pixels.
    ov += ["data.augment=[{name: Rotate, limit: 45, p: 1}]"]
    out = run_cli(*ov, *DDP, "trainer.max_epochs=1", "data.val_crop_size=null")
    assert out.returncode == 0, out.stderr[-3000:]
    # both processes chose the same (default, time-stamped) run directory
    dirs = list((tmp_path / "runs").iterdir())
    assert len(dirs) == 1 and dirs[0].name.startswith("unet-")
    run_dir = dirs[0]
    assert out.stdout.count("best model:") == 1  # only rank 0 reports
    # the bundle is written once, by rank 0: one folder, no half-written or second copies
    assert (run_dir / "bundle" / "bundle.json").is_file()
    assert sorted(p.name for p in run_dir.iterdir() if "bundle" in p.name) == ["bundle"]

    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    rank0, rank1 = _crops_of_rank(cfg, 0, 0), _crops_of_rank(cfg, 1, 0)
    assert len(rank0) == len(rank1) == 4
    assert all(not torch.equal(a[0], b[0]) for a in rank0 for b in rank1)  # different crops
    # the training confusion matrix was summed over both ranks: it counts both ranks' labelled pixels
    labelled = sum(int((y < 5).sum()) for _, y in rank0 + rank1)
    assert labelled != 2 * sum(int((y < 5).sum()) for _, y in rank0)  # the check can tell the ranks apart
    rows = _rows(run_dir)
    train_pixels = [float(r["train_pixels"]) for r in rows if r.get("train_pixels")]
    assert train_pixels == [labelled]
    # validation metrics cover every validation image once (split between the ranks, then summed)
    best = json.loads((run_dir / "best_metrics.json").read_text())
    assert best["miou"] == pytest.approx(_independent_val_miou(run_dir / "bundle", cfg), abs=1e-6)

    # --resume of the DDP run: one more epoch, same two processes
    out = run_cli("--resume", str(run_dir), *DDP, "trainer.max_epochs=2")
    assert out.returncode == 0, out.stderr[-3000:]
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 2  # one step per epoch per rank
    rows = _rows(run_dir)
    assert {int(r["epoch"]) for r in rows if r["val_miou"]} == {0, 1}
    labelled_1 = sum(int((y < 5).sum()) for _, y in _crops_of_rank(cfg, 0, 1) + _crops_of_rank(cfg, 1, 1))
    assert [float(r["train_pixels"]) for r in rows if r.get("train_pixels")] == [labelled, labelled_1]
