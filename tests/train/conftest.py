"""Fixtures for the training tests: a tiny, fast config on the generated sample."""

from __future__ import annotations

import pytest


@pytest.fixture
def tiny_overrides(sample_dataset, tmp_path):
    """Overrides for a seconds-long run: 4-channel 2-level U-Net, 32 px crops, 2 steps per epoch."""
    return [
        f"data.dataset={sample_dataset}", "data.crop_size=32", "data.batch_size=4", "data.samples_per_epoch=8",
        "data.val_crop_size=64", "data.val_fraction=0.34",
        "model.name=unet", "model.options={base_channels: 4, depth: 2}",
        "trainer.max_epochs=2", "trainer.log_every_n_steps=1", "optimizer.lr=0.01",
        f"output.dir={tmp_path / 'runs'}", "output.name=run",
    ]
