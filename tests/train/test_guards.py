"""Guards: a diverging run stops with one line and leaves no bundle; a bundle with NaN weights is
refused by predict, evaluate and export; a model that cannot fit is refused before allocation."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "terraseg", *args], capture_output=True, text=True,
                          env={**os.environ, "TERRASEG_PROGRESS": "0"}, timeout=600)


def _one_line(out: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr[-3000:]
    return lines[0]


def test_huge_learning_rate_stops_with_one_line_and_no_bundle(tiny_overrides, tmp_path):
    # the default recipe (AdamW, warmup from 1 % of lr): the loss explodes in the second step
    out = cli("train", *tiny_overrides, "optimizer.lr=1e6")
    assert out.returncode != 0
    line = _one_line(out)
    assert line.startswith("error: training diverged: the loss is ") and "times its first value" in line
    assert "at step 1 (learning rate" in line
    run = tmp_path / "runs" / "run"
    assert not (run / "bundle").exists()
    # SGD with a constant huge rate: the weights overflow, the loss becomes NaN
    out = cli("train", *tiny_overrides, "optimizer.lr=1e30", "optimizer.name=sgd", "schedule.name=constant",
              "schedule.warmup_steps=0", "output.name=sgd")
    assert out.returncode != 0
    line = _one_line(out)
    assert line.startswith("error: training diverged: the loss is nan at step ") and "learning rate 1e+30" in line
    run = tmp_path / "runs" / "sgd"
    # a run that fails before its first checkpoint leaves nothing; never a (half-written) bundle
    assert not run.exists() or not [p for p in run.iterdir() if "bundle" in p.name]


def test_diverged_weights_are_never_bundled(tiny_overrides):
    import lightning.pytorch as pl

    from terraseg.train.module import TrainingDiverged
    from terraseg.train.run import train

    class Poison(pl.Callback):  # the weights become NaN after the last (finite) step, before validation
        def on_validation_start(self, trainer, pl_module):
            if not trainer.sanity_checking:
                with torch.no_grad():
                    next(pl_module.model.parameters()).fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match="weights hold NaN"):
        train(None, tiny_overrides + ["trainer.max_epochs=1", "output.name=poison"], callbacks=[Poison()])
    run = [o for o in tiny_overrides if o.startswith("output.dir=")][0].split("=", 1)[1]
    assert not (__import__("pathlib").Path(run) / "poison" / "bundle").exists()


@pytest.fixture
def nan_bundle(tiny_bundle, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    bad = tmp_path / "nan-bundle"
    shutil.copytree(tiny_bundle, bad)
    state = load_file(str(bad / "model.safetensors"))
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[name][0] = float("nan")
    save_file(state, str(bad / "model.safetensors"), metadata={"format": "terraseg-bundle"})
    return bad


def test_nan_bundle_is_refused_by_load_predict_evaluate_and_export(nan_bundle, sample_dataset, tmp_path):
    from terraseg.bundle import load_bundle
    from terraseg.errors import ModelError

    with pytest.raises(ModelError, match="NaN or infinite"):
        load_bundle(nan_bundle)
    image = next((sample_dataset.parent / "images").iterdir())
    for args in (["predict", str(nan_bundle), str(image), "--out", str(tmp_path / "maps")],
                 ["evaluate", str(nan_bundle), "--data", str(sample_dataset), "--split", "all",
                  "--out", str(tmp_path / "eval")],
                 ["export", str(nan_bundle), "--onnx", str(tmp_path / "m.onnx")]):
        out = cli(*args)
        assert out.returncode == 2, (args[0], out.stderr[-2000:])
        line = _one_line(out)
        assert "NaN or infinite" in line and "model.safetensors" in line, (args[0], line)
    assert not (tmp_path / "m.onnx").exists()


def test_oversized_model_is_refused_with_an_estimate_before_allocation(tiny_overrides, tmp_path):
    out = cli("train", *tiny_overrides, "model.options={base_channels: 4, depth: 30}")
    assert out.returncode == 2
    line = _one_line(out)
    assert "unet" in line and "depth" in line and "parameters" in line
    assert not (tmp_path / "runs" / "run").exists()  # refused before the run directory was made
    out = cli("train", *tiny_overrides, "model.options={base_channels: 2048, depth: 5}")
    assert out.returncode == 2
    line = _one_line(out)
    assert "cannot fit" in line and "GiB of activations" in line and "batch 4 of 32 px crops" in line
