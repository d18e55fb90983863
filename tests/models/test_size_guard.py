"""Model size estimates on the meta device, and the refusal of models that cannot fit."""

from __future__ import annotations

import pytest
import torch

from terraseg import models
from terraseg.errors import ModelError
from terraseg.models.complexity import check_training_fits, training_footprint


def test_footprint_counts_the_real_parameters_and_scales_with_batch_and_crop():
    fp = training_footprint("unet", {"base_channels": 4, "depth": 2}, 3, 5, 32, 2)
    real = models.build("unet", in_channels=3, num_classes=5, base_channels=4, depth=2)
    assert fp.params == sum(p.numel() for p in real.parameters())
    # activations: at least the input-sized output logits, and every one of them is per pixel
    assert fp.activation_bytes > 2 * 5 * 32 * 32 * 4
    assert training_footprint("unet", {"base_channels": 4, "depth": 2}, 3, 5, 32, 4).activation_bytes == \
        2 * fp.activation_bytes
    assert training_footprint("unet", {"base_channels": 4, "depth": 2}, 3, 5, 64, 2).activation_bytes == \
        4 * fp.activation_bytes
    # the same leaf outputs measured on a real forward pass
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.numel() * 4))
             for m in real.modules() if not list(m.children())]
    real.train()(torch.randn(2, 3, 32, 32))
    for h in hooks:
        h.remove()
    assert fp.activation_bytes == sum(sizes)


def test_impossible_models_are_refused(monkeypatch):
    with pytest.raises(ModelError, match="more than 9.2e18 parameters"):
        models.build("unet", in_channels=3, num_classes=5, depth=30)
    with pytest.raises(ModelError, match="more than 9.2e18 parameters"):
        check_training_fits("unet", {"depth": 30}, 3, 5, 256, 8)
    import psutil

    class Mem:
        available = 2 ** 30  # 1 GiB free

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Mem())
    with pytest.raises(ModelError, match=r"need about .* GiB, but 1.0 GiB of free RAM"):
        check_training_fits("unet", {"base_channels": 64, "depth": 4}, 3, 5, 512, 16, accelerator="cpu")
    with pytest.raises(ModelError, match="more than the 1.0 GiB of free RAM"):
        models.build("unet", in_channels=3, num_classes=5, base_channels=512, depth=5)
    fp = check_training_fits("unet", {"base_channels": 4, "depth": 2}, 3, 5, 64, 2, accelerator="cpu")
    assert fp.total_bytes < 2 ** 30
