"""Shared fixtures. Area-specific fixtures live next to their tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DUBAI = ROOT.parent / "shared" / "datasets" / "dubai-mbrsc"

os.environ.setdefault("TERRASEG_PROGRESS", "0")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory):
    """Cached ONNX exports of the auto backend go to a temporary folder, never the user's cache."""
    if "TERRASEG_CACHE_DIR" not in os.environ:
        os.environ["TERRASEG_CACHE_DIR"] = str(tmp_path_factory.mktemp("model-cache"))
    yield


@pytest.fixture(scope="session")
def dubai_root() -> Path:
    """The real Dubai data set, read in place from ../shared (never copied)."""
    if not (DUBAI / "Tile 1" / "masks").is_dir():
        pytest.skip(f"real data set not found at {DUBAI} (it lives in ../shared beside the project)")
    return DUBAI


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """A folder kept after the run (screenshots, plots): test-output/ at the project root."""
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    return out


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory) -> Path:
    """A small generated labelled sample; returns its dataset YAML."""
    from terraseg.data.sample import generate_sample

    return generate_sample(tmp_path_factory.mktemp("sample"), n_images=6, size=160, seed=0)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, sample_dataset) -> Path:
    """A randomly initialised small classic U-Net saved as a bundle for the sample's classes."""
    import torch

    from terraseg import models
    from terraseg.bundle import BundleMeta, save_bundle
    from terraseg.data.spec import load_spec

    spec = load_spec(sample_dataset)
    torch.manual_seed(0)
    options = {"base_channels": 8, "depth": 3}
    model = models.build("unet", in_channels=spec.bands, num_classes=spec.num_classes, **options)
    meta = BundleMeta(
        architecture="unet", options=options, in_channels=spec.bands, num_classes=spec.num_classes,
        classes=list(spec.class_names), colors=[list(c) for c in spec.colors], ignore_index=spec.ignore_index,
        mean=[127.5] * spec.bands, std=[64.0] * spec.bands, tile_size=64,
    )
    return save_bundle(tmp_path_factory.mktemp("bundle") / "tiny-unet", model, meta)
