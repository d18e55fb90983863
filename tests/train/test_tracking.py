"""Loggers, callbacks by import path and Lightning Trainer arguments, through ``train`` itself."""

from __future__ import annotations

import json

import pytest

from terraseg.errors import ConfigError
from terraseg.train import train


def _without(overrides, prefix):
    return [o for o in overrides if not o.startswith(prefix)]


def test_unlisted_trainer_arguments_and_callbacks_reach_the_trainer(tiny_overrides):
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import LearningRateMonitor

    seen = {}

    class Record(pl.Callback):
        def on_fit_start(self, trainer, pl_module):
            seen["accumulate"] = trainer.accumulate_grad_batches
            seen["clip"] = (trainer.gradient_clip_algorithm.value, trainer.gradient_clip_val)
            seen["monitors"] = [c for c in trainer.callbacks if isinstance(c, LearningRateMonitor)]
            seen["loggers"] = [type(lg).__name__ for lg in trainer.loggers]

    ov = _without(tiny_overrides, "trainer.max_epochs") + [
        "trainer.max_epochs=1", "--trainer.accumulate_grad_batches=2", "trainer.gradient_clip_algorithm=value",
        "trainer.gradient_clip_val=0.5", "logger=null",
        "callbacks=[{class_path: lightning.pytorch.callbacks.LearningRateMonitor, init_args: {logging_interval: step}}]"]
    result = train(None, ov, callbacks=[Record()])
    assert seen["accumulate"] == 2
    assert seen["clip"] == ("value", 0.5)
    assert len(seen["monitors"]) == 1 and seen["monitors"][0].logging_interval == "step"
    assert seen["loggers"] == ["CSVLogger"]  # logger: null leaves only metrics.csv
    # 8 crops in batches of 4 = 2 batches, accumulated into 1 optimizer step
    assert result.global_step == 1
    assert not (result.run_dir / "tensorboard").exists()


def test_bad_callback_is_one_line_and_writes_nothing(tiny_overrides, tmp_path):
    with pytest.raises(ConfigError, match=r"key 'callbacks\[0\].class_path': cannot import 'nope.Missing'"):
        train(None, tiny_overrides + ["callbacks=nope.Missing"])
    with pytest.raises(ConfigError, match=r"key 'callbacks\[0\].init_args': LearningRateMonitor"):
        train(None, tiny_overrides + ["callbacks=[{class_path: LearningRateMonitor, init_args: {interval: 3}}]"])
    assert not (tmp_path / "runs").exists()


def test_mlflow_run_records_params_metrics_and_bundle(tiny_overrides, tmp_path):
    pytest.importorskip("mlflow", reason="the mlflow extra is part of the dev install")
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    ov = tiny_overrides + [f"logger={{name: mlflow, tracking_uri: '{uri}', experiment: terraseg-test}}"]
    result = train(None, ov)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("terraseg-test")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_name == "run"
    params = run.data.params
    assert params["config/optimizer/lr"] == "0.01" and params["config/data/crop_size"] == "32"
    history = client.get_metric_history(run.info.run_id, "val_miou")
    assert len(history) == 2  # one per epoch
    best = json.loads((result.run_dir / "best_metrics.json").read_text())
    assert max(m.value for m in history) == pytest.approx(best["miou"])
    names = {a.path for a in client.list_artifacts(run.info.run_id, "bundle")}
    assert names == {"bundle/bundle.json", "bundle/model.safetensors"}
    local = client.download_artifacts(run.info.run_id, "bundle/bundle.json", str(tmp_path / "dl"))
    assert open(local, "rb").read() == (result.bundle_path / "bundle.json").read_bytes()
    assert "plots/curves.png" in {a.path for a in client.list_artifacts(run.info.run_id, "plots")}


def test_wandb_offline_run_is_written_to_the_run_directory(tiny_overrides, monkeypatch):
    pytest.importorskip("wandb", reason="the wandb extra is part of the dev install")
    monkeypatch.setenv("WANDB_SILENT", "true")
    ov = _without(tiny_overrides, "trainer.max_epochs") + [
        "trainer.max_epochs=1", "logger=[{name: wandb, offline: true, experiment: terraseg-test}]"]
    result = train(None, ov)
    runs = list((result.run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    log = next(runs[0].glob("run-*.wandb")).read_bytes()
    assert b"val_miou" in log and b"terraseg-test" in log
    assert b"run-bundle" in log  # the bundle artefact
