"""Bundles: safetensors + JSON round trip, and refusal of files that are not bundles."""

from __future__ import annotations

import json
import pickle
import sys
import subprocess

import numpy as np
import pytest

from terraseg.bundle import META_NAME, WEIGHTS_NAME, BundleMeta, load_bundle, read_meta, save_bundle
from terraseg.errors import ModelError


def test_round_trip_gives_identical_outputs(tiny_bundle):
    import torch

    bundle = load_bundle(tiny_bundle)
    again = load_bundle(tiny_bundle / META_NAME)  # a file inside the folder works too
    x = torch.rand(1, bundle.meta.in_channels, 37, 45)
    with torch.no_grad():
        a, b = bundle.model(x), again.model(x)
    assert a.shape == (1, bundle.meta.num_classes, 37, 45)
    assert torch.equal(a, b)
    assert not bundle.model.training
    # metadata came back as written
    raw = json.loads((tiny_bundle / META_NAME).read_text())
    assert raw["format"] == "terraseg-bundle"
    assert bundle.meta.classes == raw["classes"] and bundle.meta.colors == raw["colors"]


def test_save_replaces_atomically_and_leaves_no_temp(tmp_path, tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    target = tmp_path / "model"
    save_bundle(target, bundle.model, bundle.meta)
    save_bundle(target, bundle.model, bundle.meta)  # replacing an existing bundle
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert sorted(p.name for p in target.iterdir()) == sorted([META_NAME, WEIGHTS_NAME])


def test_failed_save_leaves_nothing(tmp_path, tiny_bundle):
    bundle = load_bundle(tiny_bundle)

    class Broken:
        def state_dict(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_bundle(tmp_path / "model", Broken(), bundle.meta)
    assert list(tmp_path.iterdir()) == []


def test_pickle_is_not_a_model(tmp_path):
    """A pickle disguised as weights must be refused, never executed."""
    folder = tmp_path / "evil"
    folder.mkdir()
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (folder / WEIGHTS_NAME).write_bytes(pickle.dumps(Payload()))
    meta = BundleMeta(architecture="unet", in_channels=3, num_classes=2, classes=["a", "b"],
                      colors=[[0, 0, 0], [255, 255, 255]], options={"base_channels": 4, "depth": 2})
    (folder / META_NAME).write_text(json.dumps(meta.to_json()))
    with pytest.raises(ModelError, match="unreadable weights"):
        load_bundle(folder)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "unreadable bundle metadata"),
        ("[1, 2]", "not a JSON object"),
        ('{"format": "other"}', "not a terraseg bundle"),
        ('{"format": "terraseg-bundle", "format_version": 1, "architecture": "unet"}', "key 'in_channels': missing"),
    ],
)
def test_bad_metadata_is_one_clear_error(tmp_path, content, message):
    (tmp_path / META_NAME).write_text(content)
    with pytest.raises(ModelError, match=message) as info:
        read_meta(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert "\n" not in str(info.value)


def test_weights_that_do_not_match_the_architecture(tmp_path, tiny_bundle):
    meta = read_meta(tiny_bundle)
    d = meta.to_json()
    d["options"] = {"base_channels": 16, "depth": 3}
    folder = tmp_path / "mismatch"
    folder.mkdir()
    (folder / WEIGHTS_NAME).write_bytes((tiny_bundle / WEIGHTS_NAME).read_bytes())
    (folder / META_NAME).write_text(json.dumps(d))
    with pytest.raises(ModelError, match="do not match architecture"):
        load_bundle(folder)


def test_read_meta_does_not_import_torch(tiny_bundle):
    code = (
        "import sys\n"
        "from terraseg.bundle import read_meta\n"
        f"m = read_meta({str(tiny_bundle)!r})\n"
        "assert m.num_classes > 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
