"""End-to-end training on the generated sample: run directory, bundle, exact resume, errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from terraseg.errors import DataError, TerrasegError
from terraseg.train.run import train


def test_train_writes_run_directory_and_bundle(tiny_overrides, artifacts_dir):
    result = train(None, tiny_overrides + ["loss.terms={ce: 1, dice: 0.5, lovasz: 0.2}", "loss.class_weights=auto",
                                           "optimizer.head_lr_multiplier=10", "schedule.warmup_steps=2"])
    run = result.run_dir
    for name in ("config.yaml", "metrics.csv", "best_metrics.json", "plots/curves.png",
                 "plots/confusion_matrix.png", "bundle/bundle.json", "bundle/model.safetensors",
                 "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert list((run / "checkpoints").glob("best-*.ckpt"))
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    cols = set(rows[0])
    assert {"train_loss_epoch", "val_loss", "train_pa", "train_miou", "val_pa", "val_miou", "lr"} <= cols
    assert sum(1 for r in rows if r["val_miou"]) == 2  # one validation per epoch
    lrs = [float(r["lr"]) for r in rows if r["lr"]]
    assert lrs[0] < lrs[1]  # warmup

    from terraseg.bundle import load_bundle, read_meta
    from terraseg.data.spec import load_spec

    meta = read_meta(result.bundle_path)
    spec = load_spec(tiny_overrides[0].split("=", 1)[1])
    assert meta.architecture == "unet" and meta.options == {"base_channels": 4, "depth": 2}
    assert meta.classes == list(spec.class_names) and meta.num_classes == 5
    assert meta.colors == [list(c) for c in spec.colors] and meta.ignore_index == 255
    assert meta.in_channels == 3 and meta.tile_size == 32 and len(meta.mean) == 3 and len(meta.std) == 3
    best = json.loads((run / "best_metrics.json").read_text())
    assert meta.metrics["miou"] == pytest.approx(best["miou"])
    val_mious = [float(r["val_miou"]) for r in rows if r["val_miou"]]
    assert meta.metrics["miou"] == pytest.approx(max(val_mious), abs=1e-6)
    assert result.metrics["miou"] == pytest.approx(max(val_mious), abs=1e-6)
    # the bundle reloads (safetensors, no pickle) into the same weights as the best checkpoint
    bundle = load_bundle(result.bundle_path)
    x = torch.randn(1, 3, 40, 40)
    assert bundle.model(x).shape == (1, 5, 40, 40)
    # the resolved config has absolute paths and the effective overrides
    import yaml

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["loss"]["terms"] == {"ce": 1.0, "dice": 0.5, "lovasz": 0.2}
    assert cfg["optimizer"]["head_lr_multiplier"] == 10.0
    # the curves are kept for inspection
    (artifacts_dir / "train").mkdir(exist_ok=True)
    for name in ("curves.png", "confusion_matrix.png"):
        (artifacts_dir / "train" / name).write_bytes((run / "plots" / name).read_bytes())
    # a second run into the same directory is refused (no lost work)
    with pytest.raises(TerrasegError, match="--resume"):
        train(None, tiny_overrides)


class _StopAfterFirstEpoch:
    """Simulates an interruption right after epoch 1 was checkpointed."""

    def __new__(cls):
        import lightning.pytorch as pl

        class Stop(pl.Callback):
            def on_train_epoch_end(self, trainer, pl_module):
                trainer.should_stop = True

        return Stop()


def _ckpt(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_resume_is_exact(tiny_overrides, tmp_path):
    # schedule with warmup so the learning rate changes every step; SGD with momentum state
    common = ["optimizer.name=sgd", "optimizer.nesterov=true", "schedule.name=cosine", "schedule.warmup_steps=3"]
    straight = train(None, tiny_overrides + common + ["output.name=straight"])
    first = train(None, tiny_overrides + common + ["output.name=resumed"], callbacks=[_StopAfterFirstEpoch()])
    assert first.epochs == 1
    resumed = train(resume=first.run_dir)
    assert resumed.global_step == straight.global_step == 4
    a = _ckpt(straight.run_dir / "checkpoints" / "last.ckpt")
    b = _ckpt(resumed.run_dir / "checkpoints" / "last.ckpt")
    assert a["epoch"] == b["epoch"] and a["global_step"] == b["global_step"]
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    oa, ob = a["optimizer_states"][0], b["optimizer_states"][0]
    for pid, st in oa["state"].items():
        assert torch.equal(st["momentum_buffer"], ob["state"][pid]["momentum_buffer"])
    assert [g["lr"] for g in oa["param_groups"]] == [g["lr"] for g in ob["param_groups"]]
    assert a["lr_schedulers"][0]["last_epoch"] == b["lr_schedulers"][0]["last_epoch"] == 4
    # metrics.csv of the resumed run holds both epochs
    with open(resumed.run_dir / "metrics.csv") as f:
        epochs = {int(r["epoch"]) for r in csv.DictReader(f) if r["val_miou"]}
    assert epochs == {0, 1}


def test_resume_needs_a_run_directory(tmp_path):
    with pytest.raises(TerrasegError, match="config.yaml is missing"):
        train(resume=tmp_path)


def test_no_labelled_pixels_is_a_clear_error(sample_dataset, tiny_overrides, tmp_path):
    import yaml

    d = yaml.safe_load(sample_dataset.read_text())
    d["root"] = str(sample_dataset.parent)
    for i, c in enumerate(d["classes"]):
        c["color"] = f"#0102{i + 3:02X}"  # no mask pixel has these colours: every pixel becomes ignore
    bad = tmp_path / "nolabels.yaml"
    bad.write_text(yaml.safe_dump(d))
    overrides = [o for o in tiny_overrides if not o.startswith("data.dataset")] + [f"data.dataset={bad}"]
    # refused up front: every sampled mask pixel would be ignored
    with pytest.raises(DataError, match=r"100(\.0)? % of .*mask pixels"):
        train(None, overrides)
    # with the share check switched off, the training data itself has no labelled pixel
    d["max_ignored_share"] = 1.0
    bad.write_text(yaml.safe_dump(d))
    with pytest.raises(DataError, match="no labelled pixels"):
        train(None, overrides)


def test_multitask_resuneta_trains(tiny_overrides):
    ov = [o for o in tiny_overrides if not o.startswith("model.")] + [
        "model.name=resuneta_d6_multitask", "model.options={base_channels: 4}", "loss.terms={tanimoto: 1}",
        "trainer.max_epochs=1", "data.samples_per_epoch=4", "output.name=multitask"]
    result = train(None, ov)
    with open(result.run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    row = [r for r in rows if r.get("train_loss_boundary")][0]
    for k in ("train_loss_segmentation", "train_loss_boundary", "train_loss_distance", "train_loss_color"):
        v = float(row[k])
        assert 0.0 < v < 1.0 and np.isfinite(v)
    assert result.bundle_path is not None


def test_early_stopping_and_wall_clock_budget(tiny_overrides):
    # a learning rate too small to learn (only BatchNorm statistics move): with patience 1 the run
    # stops one validation after its best one although 6 epochs were allowed
    ov = [o for o in tiny_overrides if not o.startswith(("trainer.max_epochs", "optimizer.lr"))]
    result = train(None, ov + ["trainer.max_epochs=6", "optimizer.lr=1e-12", "trainer.early_stopping_patience=1",
                               "output.name=early"])
    assert result.epochs < 6 and result.epochs == result.metrics["epoch"] + 1
    # a tiny wall-clock budget (0.6 s) ends training early even with many epochs allowed; the final
    # weights are validated and bundled
    result = train(None, ov + ["trainer.max_epochs=null", "trainer.max_time=0.01", "output.name=budget"])
    assert 1 <= result.global_step < 40 and result.bundle_path is not None
