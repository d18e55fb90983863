"""Sizes beyond the machine are refused before any work, through the size guards, naming the key or
option; wrong option types, complex rasters and an output folder that is an input folder: one line."""

from __future__ import annotations

import shutil

import numpy as np
import psutil
import pytest

from terraseg.data.source import DEFAULT_MAX_PIXELS

from .helpers import listing, one_line, run


def _error(err: str) -> str:
    """The one error line; the memory guard needs the model's class count, so the model's info line
    ("model: torch fp32, ...") may come before it."""
    return one_line("\n".join(ln for ln in err.splitlines() if not ln.startswith("model: ")))


def _image(sample_dataset):
    return sorted((sample_dataset.parent / "images").iterdir())[0]


def _geotiff(path, array, dtype=None):
    import rasterio
    from rasterio.transform import from_origin

    bands, h, w = array.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=bands, dtype=dtype or array.dtype.name,
                       crs="EPSG:32640", transform=from_origin(300000, 2800000, 0.5, 0.5)) as dst:
        dst.write(array)
    return path


# ------------------------------------------------------------------ prediction tiles
@pytest.mark.parametrize("argv, words", [
    (["--tile-size", "100000"], ["--tile-size 100000", f"{DEFAULT_MAX_PIXELS:,} px"]),
    (["--tile-size", "31000", "--batch-size", "64"], ["--tile-size 31000 with --batch-size 64", "free RAM"]),
])
def test_tile_size_beyond_the_machine(tmp_path, tiny_bundle, sample_dataset, capsys, argv, words):
    if "--batch-size" in argv:
        need = 64 * (3 + 5) * 31000 ** 2 * 4
        assert need > psutil.virtual_memory().available, "this machine could hold the batch"
    code, out, err = run(["predict", tiny_bundle, _image(sample_dataset), "-o", tmp_path / "out", "--backend",
                          "torch", *argv], capsys)
    line = _error(err)
    assert code == 2 and all(w in line for w in words), line
    assert "MemoryError" not in out and not (tmp_path / "out").exists()


def test_bundle_tile_size_beyond_the_pixel_guard(tmp_path, tiny_bundle, sample_dataset, capsys):
    import json

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["tile_size"] = 10 ** 6
    (bundle / "bundle.json").write_text(json.dumps(meta))
    code, _, err = run(["predict", bundle, _image(sample_dataset), "-o", tmp_path / "out", "--backend", "torch"],
                       capsys)
    line = _error(err)
    assert code == 2 and "the model's tile_size 1000000" in line and "TERRASEG_MAX_PIXELS" in line


def test_pixel_guard_environment_variable_moves_the_tile_limit(tmp_path, tiny_bundle, sample_dataset, capsys,
                                                               monkeypatch):
    from PIL import Image

    small = tmp_path / "small.png"
    Image.fromarray(np.full((50, 60, 3), 90, np.uint8)).save(small)
    monkeypatch.setenv("TERRASEG_MAX_PIXELS", str(64 * 64))
    code, _, err = run(["predict", tiny_bundle, small, "-o", tmp_path / "out", "--backend", "torch",
                        "--tile-size", "65"], capsys)
    assert code == 2 and "4,096 px" in _error(err)
    code, _, err = run(["predict", tiny_bundle, small, "-o", tmp_path / "out", "--backend", "torch",
                        "--tile-size", "64"], capsys)
    assert code == 0, err


# ------------------------------------------------------------------ training sizes and option types
def _train(tmp_path, sample_dataset, capsys, *overrides):
    return run(["train", f"data.dataset={sample_dataset}", "trainer.max_steps=1", "trainer.accelerator=cpu",
                "data.batch_size=2", "data.crop_size=64", "-o", tmp_path / "runs", *overrides], capsys)


@pytest.mark.parametrize("override, key, words", [
    ("data.samples_per_epoch=1000000000000", "data.samples_per_epoch", "free RAM"),
    ("data.val_crop_size=1000000", "data.val_crop_size", "1,000,000,000 px"),
    ("data.crop_size=200000", "data.crop_size", "1,000,000,000 px"),
])
def test_training_sizes_beyond_the_machine(tmp_path, sample_dataset, capsys, override, key, words):
    if "samples_per_epoch" in override:
        assert 8 * 10 ** 12 > psutil.virtual_memory().available
    code, _, err = _train(tmp_path, sample_dataset, capsys, override)
    line = one_line(err)
    assert code == 2 and f"override '{override}'" in line and f"key '{key}'" in line and words in line
    assert listing(tmp_path) == []


@pytest.mark.parametrize("options", [
    "{encoder_name: resnet18, encoder_weights: null, decoder_channels: [16, a, 8, 8, 8]}",
    "{encoder_name: resnet18, encoder_weights: null, encoder_depth: x}",
    "{encoder_weights: null, encoder_output_stride: x}",
])
def test_wrong_types_inside_model_options(tmp_path, sample_dataset, capsys, options):
    name = "smp:DeepLabV3Plus" if "output_stride" in options else "smp:Unet"
    code, _, err = _train(tmp_path, sample_dataset, capsys, f"model.name={name}", f"model.options={options}")
    line = one_line(err)
    assert code == 2 and name in line
    assert listing(tmp_path) == []


def test_an_option_that_fails_only_in_the_forward_pass():
    # a builder that stores a size without using it until forward: the meta-device pass names the options
    import torch

    from terraseg.errors import ModelError
    from terraseg.models import complexity

    class Lazy(torch.nn.Module):
        def __init__(self, scale):
            super().__init__()
            self.scale, self.conv = scale, torch.nn.Conv2d(3, 2, 1)

        def forward(self, x):
            return torch.nn.functional.interpolate(self.conv(x), scale_factor=1 / self.scale)

    def fake_build(name, in_channels, num_classes, **options):
        return Lazy(**options)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("terraseg.models.build", fake_build)
        with pytest.raises(ModelError, match=r"options \{'scale': 'x'\} cannot run a forward pass \(TypeError"):
            complexity.training_footprint("lazy", {"scale": "x"}, 3, 2, 32, 1)


# ------------------------------------------------------------------ complex rasters
def test_complex_raster_is_refused(tmp_path, tiny_bundle, capsys):
    rng = np.random.default_rng(0)
    values = (rng.random((3, 40, 50)) + 1j * rng.random((3, 40, 50))).astype(np.complex64)
    scene = _geotiff(tmp_path / "slc.tif", values)
    code, out, err = run(["predict", tiny_bundle, scene, "-o", tmp_path / "out", "--backend", "torch"], capsys)
    assert code == 1 and "Traceback" not in err
    assert "slc.tif: band 1 is complex-valued (complex64)" in out + err
    assert listing(tmp_path / "out") == []
    from terraseg.data.source import open_source
    from terraseg.errors import DataError

    with pytest.raises(DataError, match="complex-valued"):
        open_source(values.transpose(1, 2, 0))
    with pytest.raises(DataError, match="band 2 is complex-valued"):  # a real band 1 does not hide band 2
        import rasterio

        both = tmp_path / "mixed.vrt"
        _geotiff(tmp_path / "real.tif", np.ones((1, 40, 50), np.float32))
        with rasterio.open(tmp_path / "real.tif") as a, rasterio.open(scene) as b:
            assert a.dtypes[0] == "float32" and b.dtypes[0] == "complex64"
        both.write_text(f"""<VRTDataset rasterXSize="50" rasterYSize="40">
  <VRTRasterBand dataType="Float32" band="1"><SimpleSource><SourceFilename>{tmp_path / 'real.tif'}</SourceFilename>
    <SourceBand>1</SourceBand></SimpleSource></VRTRasterBand>
  <VRTRasterBand dataType="CFloat32" band="2"><SimpleSource><SourceFilename>{scene}</SourceFilename>
    <SourceBand>1</SourceBand></SimpleSource></VRTRasterBand>
</VRTDataset>""")
        open_source(both)


# ------------------------------------------------------------------ output folder = input folder
def test_out_equal_to_an_input_folder(tmp_path, tiny_bundle, sample_dataset, capsys):
    images = tmp_path / "images"
    shutil.copytree(sample_dataset.parent / "images", images)
    before = listing(images)
    for out in (images, images / "." , tmp_path / "images" / ".." / "images"):
        code, _, err = run(["predict", tiny_bundle, images, "-o", out, "--backend", "torch"], capsys)
        line = _error(err)
        assert code == 2 and "is the input folder" in line
    assert listing(images) == before
    # inside an input folder read with --recursive: the outputs would be inputs next time
    code, _, err = run(["predict", tiny_bundle, images, "-o", images / "pred", "--recursive", "--backend", "torch"],
                       capsys)
    assert code == 2 and "--recursive" in _error(err)
    assert listing(images) == before
