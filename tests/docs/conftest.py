"""Fixtures of the docs tests: the working folder every runnable docs block starts in.

The folder holds what the docs' runnable blocks name, made here without downloads:

* ``sample/``: the generated sample data set (``sample/dataset.yaml``, 4 scenes of 128 px);
* ``model/``: the suite's randomly initialised tiny U-Net bundle (``tiny_bundle``) for the sample's
  classes, ``model.onnx`` its ONNX export;
* ``scene.tif``: one sample scene as a 3-band GeoTIFF of 1 m Web Mercator pixels at 52° N;
* ``examples/``: a copy of the project's example configs; ``../shared`` links to the real
  ``../shared`` beside the project (the Dubai data set), when it is there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"


def _scene_geotiff(image_png: Path, out: Path) -> None:
    import numpy as np
    import rasterio
    from PIL import Image
    from pyproj import Transformer
    from rasterio.transform import from_origin

    pixels = np.asarray(Image.open(image_png).convert("RGB")).transpose(2, 0, 1)
    x, y = Transformer.from_crs(4326, 3857, always_xy=True).transform(13.4, 52.0)
    profile = {"driver": "GTiff", "width": pixels.shape[2], "height": pixels.shape[1], "count": 3,
               "dtype": "uint8", "crs": "EPSG:3857", "transform": from_origin(x, y, 1.0, 1.0)}
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(pixels)


@pytest.fixture(scope="session")
def docs_template(tmp_path_factory, tiny_bundle) -> Path:
    from terraseg.data.sample import generate_sample
    from terraseg.export import export_onnx

    work = tmp_path_factory.mktemp("docs-template") / "work"
    work.mkdir()
    generate_sample(work / "sample", n_images=4, size=128, seed=0)
    shutil.copytree(tiny_bundle, work / "model")  # the suite's tiny U-Net: the generated sample's classes
    export_onnx(work / "model", work / "model.onnx", exporter="torchscript")
    _scene_geotiff(sorted((work / "sample" / "images").iterdir())[0], work / "scene.tif")
    shutil.copytree(ROOT / "examples", work / "examples")
    return work


@pytest.fixture
def docs_workdir(docs_template, tmp_path) -> Path:
    """A fresh copy of the template for one block (blocks never see each other's files)."""
    work = tmp_path / "work"
    shutil.copytree(docs_template, work, symlinks=True)
    if SHARED.is_dir():
        (tmp_path / "shared").symlink_to(SHARED, target_is_directory=True)
    return work


@pytest.fixture(scope="session")
def docs_env(tmp_path_factory) -> dict[str, str]:
    """The environment of a block: the venv's ``terraseg`` and ``python`` first on PATH."""
    import sys

    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["TERRASEG_PROGRESS"] = "0"
    env.setdefault("TERRASEG_CACHE_DIR", str(tmp_path_factory.mktemp("docs-model-cache")))
    env.pop("PYTHONPATH", None)
    return env
