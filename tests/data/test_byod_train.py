"""`terraseg data inspect FOLDER` then `terraseg train` on each generated layout, unchanged."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from terraseg.data.inspect import inspect_dataset

from . import byod
from .test_imperfect_masks import _blue_index, _jpeg
from .test_layouts import LAYOUTS, _make


def _tiny(dataset, out) -> list[str]:
    """One epoch of two steps of a 2-level U-Net on 32 px crops."""
    return [f"data.dataset={dataset}", "data.crop_size=32", "data.batch_size=2", "data.samples_per_epoch=4",
            "data.val_crop_size=48", "data.val_fraction=0.34", "model.name=unet",
            "model.options={base_channels: 4, depth: 2}", "trainer.max_epochs=1", "trainer.log_every_n_steps=1",
            f"output.dir={out}", "output.name=run"]


def _imperfect(case, root):
    if case == "jpeg_masks":
        byod.deepglobe(root, n=4, size=48, mask_writer=_jpeg)
    else:
        byod.write_pairs(root, 4, lambda i: f"images/{i}.png", lambda i: f"labels/{i}.png", _blue_index, 48)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # plain TIFF images
@pytest.mark.parametrize("case", LAYOUTS + ["jpeg_masks", "blue_index"])
def test_inspect_then_train(case, tmp_path):
    from terraseg.bundle import read_meta
    from terraseg.train.run import train

    root = tmp_path / case
    root.mkdir()
    _make(case, root) if case in LAYOUTS else _imperfect(case, root)
    report = inspect_dataset(root, tmp_path / "draft.yaml", progress=False)
    result = train(None, _tiny(tmp_path / "draft.yaml", tmp_path / "runs"))
    meta = read_meta(result.bundle_path)
    assert meta.num_classes == len([e for e in report.palette if e.name is not None])
    assert 0 <= result.metrics["miou"] <= 1


def test_cli_inspect_then_train_deepglobe_folder(tmp_path):
    byod.deepglobe(tmp_path / "deepglobe", n=4, size=48)
    env = {**os.environ, "TERRASEG_PROGRESS": "0"}
    out = subprocess.run([sys.executable, "-m", "terraseg", "data", "inspect", "deepglobe"], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "deepglobe.yaml").is_file() and "train/*_sat.jpg" in out.stdout
    out = subprocess.run([sys.executable, "-m", "terraseg", "train", *_tiny("deepglobe.yaml", "runs")], cwd=tmp_path,
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "runs" / "run" / "bundle" / "bundle.json").is_file()


def test_training_refuses_a_palette_that_misses_the_masks(tmp_path):
    from terraseg.errors import DataError
    from terraseg.train.run import train

    from .test_imperfect_masks import _wrong_palette_yaml

    import yaml

    from terraseg.data.spec import dump_yaml

    yml = _wrong_palette_yaml(tmp_path / "ds", tmp_path / "wrong.yaml")
    d = yaml.safe_load(yml.read_text())
    d["classes"][0]["color"] = "#0000FF"  # one of the seven colours matches: most pixels would still be ignored
    yml.write_text(dump_yaml(d))
    with pytest.raises(DataError, match=r"would be ignored, more than max_ignored_share: 0\.5; 6 unknown colours"):
        train(None, _tiny(yml, tmp_path / "runs"))
    assert not (tmp_path / "runs" / "run" / "checkpoints").exists()
