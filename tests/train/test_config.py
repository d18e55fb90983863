"""Config: defaults, YAML merge, dotted overrides, validation errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from terraseg.errors import ConfigError
from terraseg.schemas.training import TrainConfig
from terraseg.train import config as C

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write(tmp_path, data, name="cfg.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def _help_texts(model):
    from terraseg.schemas._validate import model_of

    for name, field in model.model_fields.items():
        yield name, field.description
        sub = model_of(field.annotation)
        if sub is not None:
            yield from _help_texts(sub)


def test_defaults_round_trip_through_print_config():
    text = C.dump_config(C.default_config(), comments=True)
    parsed = yaml.safe_load(text)
    assert parsed == C.default_config()
    # every key of every section has its help text in the models and in the printed config
    texts = list(_help_texts(TrainConfig))
    assert len(texts) > 60
    for name, help_text in texts:
        if name in ("data", "model", "loss", "optimizer", "schedule", "trainer", "output"):
            continue  # sections
        assert help_text, name
        assert help_text in text, name


def test_file_merge_relative_paths_and_overrides(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    p = write(tmp_path / "sub", {"data": {"dataset": "ds.yaml", "batch_size": 4}, "model": {"name": "unet"}})
    monkeypatch.chdir(tmp_path)
    cfg = C.load_config(p, ["trainer.max_epochs=3", "--optimizer.lr=0.01", "loss.terms.dice=0.5",
                            "model.options.base_channels=8", "output.dir=out", "data.sampling.mode=uniform",
                            "data.sampling.class_balance=0.25"])
    assert cfg["data"]["dataset"] == str((tmp_path / "sub" / "ds.yaml").resolve())
    assert cfg["output"]["dir"] == str((tmp_path / "out").resolve())
    assert cfg["data"]["batch_size"] == 4
    assert cfg["trainer"]["max_epochs"] == 3
    assert cfg["optimizer"]["lr"] == 0.01
    assert cfg["loss"]["terms"] == {"ce": 1.0, "dice": 0.5}
    assert cfg["model"]["options"] == {"base_channels": 8}
    assert cfg["data"]["sampling"] == {"mode": "uniform", "class_balance": 0.25}
    # untouched keys keep their defaults
    assert cfg["schedule"] == C.default_config()["schedule"]
    # removing a loss term with a null value
    cfg2 = C.load_config(p, ["loss.terms.dice=0.5", "loss.terms.ce=null"])
    assert cfg2["loss"]["terms"] == {"dice": 0.5}


def test_lists_and_mappings_on_the_command_line(tmp_path):
    p = write(tmp_path, {"data": {"dataset": "x.yaml"}})
    cfg = C.load_config(p, ["trainer.devices=[0, 1]", "model.options={base_channels: 16, depth: 3}",
                            "data.train_splits=[train, extra]", "--logger=[tensorboard, {name: mlflow}]",
                            "callbacks=[{class_path: LearningRateMonitor, init_args: {logging_interval: step}}]"])
    assert cfg["trainer"]["devices"] == [0, 1]
    assert cfg["model"]["options"] == {"base_channels": 16, "depth": 3}
    assert cfg["data"]["train_splits"] == ["train", "extra"]
    assert [lg["name"] for lg in cfg["logger"]] == ["tensorboard", "mlflow"]
    assert cfg["callbacks"] == [{"class_path": "LearningRateMonitor", "init_args": {"logging_interval": "step"}}]
    # short forms
    cfg = C.load_config(p, ["logger=mlflow", "logger.tracking_uri=file:///tmp/x", "callbacks=RichModelSummary"])
    assert cfg["logger"] == [{**cfg["logger"][0], "name": "mlflow", "tracking_uri": "file:///tmp/x"}]
    assert cfg["callbacks"] == [{"class_path": "RichModelSummary", "init_args": {}}]
    assert C.load_config(p, ["logger=null"])["logger"] == []


def test_lightning_trainer_arguments_pass_through(tmp_path):
    p = write(tmp_path, {"data": {"dataset": "x.yaml"}, "trainer": {"accumulate_grad_batches": 4}})
    cfg = C.load_config(p, ["trainer.gradient_clip_algorithm=value"])
    assert cfg["trainer"]["accumulate_grad_batches"] == 4
    assert cfg["trainer"]["gradient_clip_algorithm"] == "value"
    # the printed config carries them, and reads back the same
    assert C.load_config(write(tmp_path, C.dump_config(cfg, comments=True), "again.yaml")) == cfg


@pytest.mark.parametrize("data, override, needle", [
    ({"data": {"dataset": "x.yaml", "batchsize": 2}}, [], "key 'data.batchsize': unknown key (did you mean 'batch_size'?)"),
    ({"dta": {}}, [], "key 'dta': unknown key (did you mean 'data'?)"),
    ({"data": {"dataset": "x.yaml", "batch_size": 0}}, [], "key 'data.batch_size': must be > 0, got 0"),
    ({"data": {"dataset": "x.yaml", "batch_size": "8"}}, [], "key 'data.batch_size': must be an integer, got '8'"),
    ({"data": {"dataset": "x.yaml", "sampling": {"class_balance": 1.5}}}, [],
     "key 'data.sampling.class_balance': must be <= 1, got 1.5"),
    ({"data": {"dataset": "x.yaml", "sampling": {"mode": "areas"}}}, [], "did you mean 'area'?"),
    ({"data": {"dataset": "x.yaml"}, "optimizer": {"name": "adamm"}}, [],
     "key 'optimizer.name': must be one of sgd, adam, adamw, got 'adamm' (did you mean 'adam'?)"),
    ({"data": {"dataset": "x.yaml"}, "loss": {"terms": {"dicee": 1}}}, [], "unknown loss 'dicee' (did you mean 'dice'?)"),
    ({"data": {"dataset": "x.yaml"}, "loss": {"class_weights": "median"}}, [], "key 'loss.class_weights'"),
    ({"data": {"dataset": "x.yaml"}, "trainer": {"max_epochs": None}}, [], "key 'trainer.max_time'"),
    ({"data": {"dataset": "x.yaml"}, "trainer": {"max_epochs": True}}, [], "key 'trainer.max_epochs': must be an integer"),
    ({"data": {"dataset": "x.yaml"}, "schedule": {"milestones": [0.9, 0.5]}}, [], "key 'schedule.milestones'"),
    ({"data": {"dataset": "x.yaml"}, "trainer": {"callbacks": []}}, [], "top-level 'callbacks:'"),
    ({"data": {"dataset": "x.yaml"}, "logger": "mlfow"}, [], "did you mean 'mlflow'?"),
    ({"data": {"dataset": "x.yaml"}, "logger": {"name": "wandb", "ofline": True}}, [],
     "key 'logger[0].ofline': unknown key (did you mean 'offline'?)"),
    ({"data": {"dataset": "x.yaml"}, "callbacks": [{"init_args": {}}]}, [], "key 'callbacks[0].class_path': missing"),
    ({"data": {"dataset": "x.yaml"}}, ["trainer.max_epoch=3"], "(did you mean 'max_epochs'?)"),
    ({"data": {"dataset": "x.yaml"}}, ["trainer.max_epochs"], "section.key=value"),
    ({"data": {"dataset": "x.yaml"}}, ["optimizer.lr=fast"],
     "override 'optimizer.lr=fast': key 'optimizer.lr': must be a number, got 'fast'"),
    ({"data": {"dataset": "x.yaml"}}, ["optimizer.lr=-1"], "override 'optimizer.lr=-1': key 'optimizer.lr': must be > 0"),
    ({}, [], "key 'data.dataset': missing"),
])
def test_errors_name_the_key(tmp_path, data, override, needle):
    p = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        C.load_config(p, override)
    message = str(info.value)
    assert needle in message and "\n" not in message
    if not override:
        assert message.startswith(f"{p}: ")


def test_bad_yaml_duplicate_keys_and_missing_file(tmp_path):
    p = write(tmp_path, "data: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        C.load_config(p)
    p = write(tmp_path, "data:\n  dataset: a.yaml\noptimizer:\n  lr: 0.1\n  name: sgd\n  lr: 0.2\n")
    with pytest.raises(ConfigError) as info:
        C.load_config(p)
    assert str(info.value) == (f"{p}: duplicate key 'optimizer.lr' at line 6 (first given at line 4); "
                               "keep one of them")
    with pytest.raises(ConfigError, match="config file not found"):
        C.load_config(tmp_path / "nope.yaml")


def test_max_time_only_and_numbers_as_strings(tmp_path):
    p = write(tmp_path, {"data": {"dataset": "x.yaml"}, "trainer": {"max_epochs": None, "max_time": 20}})
    cfg = C.load_config(p, ["optimizer.lr=1e-4"])  # YAML reads 1e-4 as a string
    assert cfg["trainer"]["max_time"] == 20.0 and cfg["trainer"]["max_epochs"] is None
    assert cfg["optimizer"]["lr"] == pytest.approx(1e-4)


def test_defaults_are_relative_to_cwd_and_sample_config_matches_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = C.load_config({"data": {"dataset": "d.yaml"}})
    assert cfg["output"]["dir"] == str(tmp_path / "runs") and cfg["data"]["dataset"] == str(tmp_path / "d.yaml")
    # the Python sample config (make demo) and examples/train-sample.yaml describe the same training
    from terraseg.train.run import SAMPLE_CONFIG

    a = C.load_config(EXAMPLES / "train-sample.yaml", ["data.dataset=d.yaml", "output.dir=o"])
    b = C.load_config(SAMPLE_CONFIG, ["data.dataset=d.yaml", "output.dir=o"])
    a["trainer"]["max_time"] = b["trainer"]["max_time"]
    assert a == b


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("train-*.yaml")))
def test_every_example_config_loads(name):
    cfg = C.load_config(EXAMPLES / name, ["data.dataset=d.yaml"])
    assert cfg["model"]["name"] and cfg["data"]["crop_size"] > 0


#: The full config a terraseg before the schema models wrote into a run's config.yaml.
OLD_RUN_CONFIG = """
data: {dataset: /d/dataset.yaml, split: null, train_splits: [train], val_splits: [val], val_fraction: 0.25,
  crop_size: 128, val_crop_size: null, batch_size: 8, samples_per_epoch: 64, augment: default, num_workers: 0}
model: {name: unet, options: {base_channels: 16, depth: 3}}
loss: {terms: {ce: 1.0, dice: 0.5}, class_weights: null, label_smoothing: 0.0, focal_gamma: 2.0,
  tanimoto_class_weights: true}
optimizer: {name: adamw, lr: 0.003, weight_decay: 0.0001, momentum: 0.9, nesterov: false, betas: [0.9, 0.999],
  head_lr_multiplier: 1.0}
schedule: {name: poly, warmup_steps: 10, warmup_start_factor: 0.01, power: 0.9, min_lr_factor: 0.0,
  milestones: [0.6, 0.85], gamma: 0.1}
trainer: {max_epochs: 12, max_time: 2.0, val_every: 1, seed: 0, precision: auto, accelerator: auto,
  devices: auto, strategy: auto, num_nodes: 1, early_stopping_patience: null, log_every_n_steps: 10,
  deterministic: false, gradient_clip_val: null, limit_train_batches: null, limit_val_batches: null,
  progress_bar: true}
output: {dir: /o, name: run, plots: true}
"""


def test_old_run_config_still_loads(tmp_path):
    cfg = C.load_config(write(tmp_path, OLD_RUN_CONFIG))
    old = yaml.safe_load(OLD_RUN_CONFIG)
    for sec, values in old.items():
        for key, value in values.items():
            assert cfg[sec][key] == value, (sec, key)
    assert [lg["name"] for lg in cfg["logger"]] == ["tensorboard"] and cfg["callbacks"] == []
