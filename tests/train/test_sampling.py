"""Crop sampling (image by area, class-balanced crops) and the decoded-image cache."""

from __future__ import annotations

import numpy as np
import pytest

from terraseg.data.crops import CropPicker, crop_window
from terraseg.errors import ConfigError


def _draws(picker, n, seed=0):
    np.random.seed(seed)
    return [picker.pick(i) for i in range(n)]


def test_uniform_mode_cycles_and_area_mode_follows_pixel_counts():
    sizes = [(100, 100), (300, 100), (100, 600)]  # 1 : 3 : 6
    uniform = CropPicker(sizes, 2, "uniform")
    assert [i for i, _ in _draws(uniform, 6)] == [0, 1, 2, 0, 1, 2]
    area = CropPicker(sizes, 2, "area")
    picks = np.array([i for i, c in _draws(area, 6000)])
    share = np.bincount(picks, minlength=3) / picks.size
    # binomial standard error at n=6000 is < 0.0065: 4 sigma
    assert share == pytest.approx([0.1, 0.3, 0.6], abs=0.026)


def test_class_balanced_crops_centre_on_pixels_of_each_present_class():
    masks = [np.zeros((64, 80), np.uint8), np.zeros((64, 64), np.uint8)]
    masks[0][10:12, 70:72] = 2  # 4 pixels of a rare class in image 0
    masks[1][:, :] = 1
    masks[1][60:, 60:] = 255  # ignored pixels are never centres
    masks[1][:3, :3] = 0
    picker = CropPicker([m.shape for m in masks], 4, "uniform", class_balance=1.0, read_mask=lambda i: masks[i])
    assert list(picker.classes) == [0, 1, 2]  # class 3 is absent from every mask
    draws = _draws(picker, 3000, seed=1)
    classes = np.array([masks[i][c] for i, c in draws])
    assert set(classes) == {0, 1, 2}
    share = np.bincount(classes, minlength=3) / classes.size
    assert share == pytest.approx([1 / 3] * 3, abs=0.04)  # each present class equally often
    # the rare class is only in image 0 at rows 10-11, cols 70-71; its crops are centred there
    rare = [(i, c) for (i, c), k in zip(draws, classes) if k == 2]
    assert {i for i, _ in rare} == {0} and {c for _, c in rare} <= {(10, 70), (10, 71), (11, 70), (11, 71)}
    win = crop_window(64, 80, (32, 32), (10, 71))
    assert win == (0, 48, 32, 32)  # centred, clamped inside the image
    y, x, h, w = win
    assert (masks[0][y:y + h, x:x + w] == 2).sum() == 4
    # with probability 0 the class rule is never used
    assert all(c is None for _, c in _draws(CropPicker([m.shape for m in masks], 4, "area", 0.0), 50))
    with pytest.raises(ConfigError, match="mode"):
        CropPicker([(8, 8)], 2, "bogus")


def test_class_balance_raises_the_rare_class_share_of_training_crops(sample_dataset):
    from terraseg.data.dataset import SegmentationDataset
    from terraseg.data.spec import load_spec

    spec = load_spec(sample_dataset)
    samples = spec.labelled()
    k = spec.num_classes
    whole = np.zeros(k)
    for s in samples:
        m, _ = spec.read_mask(s)
        whole += np.bincount(m[m < k].ravel(), minlength=k)
    rarest = int(np.argmin(whole))
    centre, pixels = {}, {}
    for p in (0.0, 1.0):
        ds = SegmentationDataset(spec, samples, crop_size=32, samples_per_epoch=400, sampling="area", class_balance=p)
        np.random.seed(0)
        masks = [ds[i][1].numpy() for i in range(len(ds))]
        centre[p] = np.mean([m[16, 16] == rarest for m in masks])
        counts = sum(np.bincount(m[m < k], minlength=k) for m in masks)
        pixels[p] = counts[rarest] / counts.sum()
    # random crops: the rarest class is at the crop centre about as often as its pixel share
    assert centre[0.0] == pytest.approx(whole[rarest] / whole.sum(), abs=0.03)
    # class-balanced crops: one crop in k is centred on it (less where a centre near the border is clamped)
    assert centre[1.0] > 0.6 / k and centre[1.0] > 3 * centre[0.0]
    assert pixels[1.0] > 1.2 * pixels[0.0]


def test_jpeg_is_decoded_once_per_process_not_once_per_crop(tmp_path, monkeypatch):
    from terraseg.data.dataset import SegmentationDataset
    from terraseg.data.sample import generate_sample
    from terraseg.data.spec import load_spec

    yaml_path = generate_sample(tmp_path / "s", n_images=2, size=96, seed=3)
    spec = load_spec(yaml_path)
    ds = SegmentationDataset(spec, spec.labelled(), crop_size=32, samples_per_epoch=20)
    calls = []
    real = spec.read_pair
    monkeypatch.setattr(spec, "read_pair", lambda s, w=None: calls.append(w) or real(s, w))
    np.random.seed(0)
    items = [ds[i] for i in range(20)]
    assert calls == [None, None]  # each of the 2 images decoded whole, once
    # the crops equal the same windows read directly from the files
    np.random.seed(0)
    fresh = SegmentationDataset(spec, spec.labelled(), crop_size=32, samples_per_epoch=20, cache_bytes=0)
    for i, (x, y) in enumerate(items):
        x2, y2 = fresh[i]
        assert np.array_equal(x.numpy(), x2.numpy()) and np.array_equal(y.numpy(), y2.numpy())
    # a budget smaller than one image keeps nothing (and decodes again)
    tiny = SegmentationDataset(spec, spec.labelled(), crop_size=32, samples_per_epoch=4, cache_bytes=1000)
    calls.clear()
    [tiny[i] for i in range(4)]
    assert len(calls) == 4 and not tiny._cache
