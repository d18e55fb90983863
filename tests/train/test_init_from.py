"""``model.init_from``: fine-tuning from a bundle or the built-in model."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from terraseg import models
from terraseg.bundle import load_bundle, read_meta
from terraseg.errors import ConfigError
from terraseg.train.config import load_config
from terraseg.train.init_from import load_matching


def test_matching_weights_are_copied_and_another_head_starts_fresh(tiny_bundle):
    source = load_bundle(tiny_bundle).model.state_dict()
    meta = read_meta(tiny_bundle)
    torch.manual_seed(1)
    model = models.build("unet", in_channels=3, num_classes=2, **meta.options)  # 2 classes, not 5
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_matching(model, str(tiny_bundle))
    after = model.state_dict()
    same = [k for k in after if source[k].shape == after[k].shape]
    other = [k for k in after if source[k].shape != after[k].shape]
    assert other and same  # the head differs in shape, the rest matches
    for k in same:
        assert torch.equal(after[k], source[k]), k
    for k in other:
        assert torch.equal(after[k], fresh[k]), k
    assert report.loaded == len(same) and report.total == len(after) and sorted(report.reinitialised) == sorted(other)
    assert f"loaded {len(same)} of {len(after)}" in report.line() and "re-initialised" in report.line()


def test_nothing_matching_is_an_error_naming_the_key(tiny_bundle):
    model = models.build("fcn8s", in_channels=3, num_classes=5)
    with pytest.raises(ConfigError, match="model.init_from.*no weight"):
        load_matching(model, str(tiny_bundle))


def test_architecture_and_options_default_to_the_source(tiny_bundle, sample_dataset):
    meta = read_meta(tiny_bundle)
    cfg = load_config(None, [f"data.dataset={sample_dataset}", f"model.init_from={tiny_bundle}"])
    assert cfg["model"]["name"] == meta.architecture and cfg["model"]["options"] == meta.options
    given = load_config(None, [f"data.dataset={sample_dataset}", f"model.init_from={tiny_bundle}",
                               "model.name=fcn8s"])
    assert given["model"]["name"] == "fcn8s" and given["model"]["options"] == {}
    builtin = load_config(None, [f"data.dataset={sample_dataset}", "model.init_from=dubai-landcover"])
    from terraseg.pretrained import folder

    assert builtin["model"]["name"] == read_meta(folder("dubai-landcover")).architecture


def test_a_missing_source_is_one_config_error(sample_dataset):
    with pytest.raises(ConfigError, match="model.init_from.*model not found"):
        load_config(None, [f"data.dataset={sample_dataset}", "model.init_from=no-such-model"])


def test_cli_fine_tunes_from_a_bundle_and_says_what_it_loaded(tiny_overrides, tiny_bundle, tmp_path):
    ov = [o for o in tiny_overrides if not o.startswith("model.")] + [f"model.init_from={tiny_bundle}",
                                                                      "trainer.max_epochs=1"]
    p = subprocess.run([sys.executable, "-m", "terraseg", "train", *ov], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    n = len(load_bundle(tiny_bundle).model.state_dict())
    assert f"init_from {tiny_bundle}: loaded {n} of {n} weight tensors" in p.stdout
    bundle = tmp_path / "runs" / "run" / "bundle"
    meta = read_meta(bundle)
    assert meta.extra["init_from"] == str(tiny_bundle)
    assert (meta.mean, meta.std) == (read_meta(tiny_bundle).mean, read_meta(tiny_bundle).std)
