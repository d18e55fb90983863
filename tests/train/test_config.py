"""Config: defaults, YAML merge, dotted overrides, validation errors that name the key."""

from __future__ import annotations

import pytest
import yaml

from terraseg.errors import ConfigError
from terraseg.train import config as C


def write(tmp_path, data, name="cfg.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def test_defaults_round_trip_through_print_config():
    text = C.dump_config(C.default_config(), comments=True)
    parsed = yaml.safe_load(text)
    assert parsed == C.default_config()
    # every key has its help text
    for sec, opts in C.SCHEMA.items():
        for key, opt in opts.items():
            assert opt.help in text


def test_file_merge_relative_paths_and_overrides(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    p = write(tmp_path / "sub", {"data": {"dataset": "ds.yaml", "batch_size": 4}, "model": {"name": "unet"}})
    monkeypatch.chdir(tmp_path)
    cfg = C.load_config(p, ["trainer.max_epochs=3", "optimizer.lr=0.01", "loss.terms.dice=0.5",
                            "model.options.base_channels=8", "output.dir=out"])
    assert cfg["data"]["dataset"] == str((tmp_path / "sub" / "ds.yaml").resolve())
    assert cfg["output"]["dir"] == str((tmp_path / "out").resolve())
    assert cfg["data"]["batch_size"] == 4
    assert cfg["trainer"]["max_epochs"] == 3
    assert cfg["optimizer"]["lr"] == 0.01
    assert cfg["loss"]["terms"] == {"ce": 1.0, "dice": 0.5}
    assert cfg["model"]["options"] == {"base_channels": 8}
    # untouched keys keep their defaults
    assert cfg["schedule"] == C.default_config()["schedule"]
    # removing a loss term with a null value
    cfg2 = C.load_config(p, ["loss.terms.dice=0.5", "loss.terms.ce=null"])
    assert cfg2["loss"]["terms"] == {"dice": 0.5}


@pytest.mark.parametrize("data, override, needle", [
    ({"data": {"dataset": "x.yaml", "batchsize": 2}}, [], "data.batchsize"),
    ({"dta": {}}, [], "unknown section 'dta'"),
    ({"data": {"dataset": "x.yaml", "batch_size": 0}}, [], "data.batch_size must be a positive integer"),
    ({"data": {"dataset": "x.yaml"}, "optimizer": {"name": "adamm"}}, [], "optimizer.name must be one of"),
    ({"data": {"dataset": "x.yaml"}, "loss": {"terms": {"dicee": 1}}}, [], "unknown loss 'dicee'"),
    ({"data": {"dataset": "x.yaml"}, "loss": {"class_weights": "median"}}, [], "loss.class_weights"),
    ({"data": {"dataset": "x.yaml"}, "trainer": {"max_epochs": None}}, [], "trainer.max_time"),
    ({"data": {"dataset": "x.yaml"}, "schedule": {"milestones": [0.9, 0.5]}}, [], "schedule.milestones"),
    ({"data": {"dataset": "x.yaml"}}, ["trainer.max_epoch=3"], "trainer.max_epoch"),
    ({"data": {"dataset": "x.yaml"}}, ["trainer.max_epochs"], "section.key=value"),
    ({"data": {"dataset": "x.yaml"}}, ["optimizer.lr=fast"], "optimizer.lr must be a number"),
    ({}, [], "data.dataset is required"),
])
def test_errors_name_the_key(tmp_path, data, override, needle):
    p = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        C.load_config(p, override)
    assert needle in str(info.value)


def test_bad_yaml_and_missing_file(tmp_path):
    p = write(tmp_path, "data: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        C.load_config(p)
    with pytest.raises(ConfigError, match="config file not found"):
        C.load_config(tmp_path / "nope.yaml")


def test_max_time_only_and_numbers_as_strings(tmp_path):
    p = write(tmp_path, {"data": {"dataset": "x.yaml"}, "trainer": {"max_epochs": None, "max_time": 20}})
    cfg = C.load_config(p, ["optimizer.lr=1e-4"])  # YAML reads 1e-4 as a string
    assert cfg["trainer"]["max_time"] == 20.0 and cfg["trainer"]["max_epochs"] is None
    assert cfg["optimizer"]["lr"] == pytest.approx(1e-4)


def test_defaults_are_relative_to_cwd_and_sample_config_matches_example(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    cfg = C.load_config({"data": {"dataset": "d.yaml"}})
    assert cfg["output"]["dir"] == str(tmp_path / "runs") and cfg["data"]["dataset"] == str(tmp_path / "d.yaml")
    # the Python sample config (make demo) and examples/train-sample.yaml describe the same training
    from terraseg.train.run import SAMPLE_CONFIG

    example = Path(__file__).resolve().parents[2] / "examples" / "train-sample.yaml"
    a = C.load_config(example, ["data.dataset=d.yaml", "output.dir=o"])
    b = C.load_config(SAMPLE_CONFIG, ["data.dataset=d.yaml", "output.dir=o"])
    a["trainer"]["max_time"] = b["trainer"]["max_time"]
    assert a == b
