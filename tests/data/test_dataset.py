from __future__ import annotations

import numpy as np
import pytest
import torch

from terraseg.data.dataset import AUG_RANGE_STD, SegmentationDataset
from terraseg.data.spec import load_spec
from terraseg.errors import ConfigError

from .conftest import make_geotiff_set


def test_whole_image_normalised_like_numpy(sample_dataset):
    spec = load_spec(sample_dataset)
    samples = spec.labelled()[:2]
    ds = SegmentationDataset(spec, samples, crop_size=None, mean=[100, 110, 120], std=[50, 60, 70])
    assert len(ds) == 2
    img, mask = ds[1]
    raw, raw_mask = spec.read_pair(samples[1])
    assert img.dtype == torch.float32 and mask.dtype == torch.int64
    assert tuple(img.shape) == (3, *raw.shape[:2]) and tuple(mask.shape) == raw.shape[:2]
    expect = (raw.astype(np.float32) - np.array([100, 110, 120], np.float32)) / np.array([50, 60, 70], np.float32)
    np.testing.assert_allclose(img.numpy().transpose(1, 2, 0), expect, rtol=1e-6)
    assert np.array_equal(mask.numpy(), raw_mask.astype(np.int64))


def test_default_normalisation_is_127_5_over_64(sample_dataset):
    spec = load_spec(sample_dataset)
    assert spec.mean is None
    ds = SegmentationDataset(spec, spec.labelled()[:1], crop_size=None)
    raw, _ = spec.read_pair(spec.labelled()[0])
    np.testing.assert_allclose(ds[0][0].numpy()[0], (raw[:, :, 0].astype(np.float32) - 127.5) / 64, rtol=1e-6)


def test_tiff_crops_are_windows_and_aligned(tmp_path, monkeypatch):
    yaml = make_geotiff_set(tmp_path, n=1, size=(50, 70), coord_pattern=True)
    spec = load_spec(yaml)
    reads = []
    import terraseg.data.spec as spec_mod

    real = spec_mod.read_raster

    def spy(path, window=None, **kw):
        reads.append(window)
        return real(path, window, **kw)

    monkeypatch.setattr(spec_mod, "read_raster", spy)
    ds = SegmentationDataset(spec, crop_size=16, mean=[0] * 4, std=[1] * 4, samples_per_epoch=5)
    assert len(ds) == 5
    corners = set()
    for i in range(5):
        img, mask = ds[i]
        assert tuple(img.shape) == (4, 16, 16) and tuple(mask.shape) == (16, 16)
        flat = int(img[0, 0, 0].item())
        r0, c0 = divmod(flat, 70)
        corners.add((r0, c0))
        rr, cc = np.mgrid[r0:r0 + 16, c0:c0 + 16]
        assert np.array_equal(img[0].numpy(), (rr * 70 + cc).astype(np.float32))
        assert np.array_equal(mask.numpy(), (rr + cc) % 3)
    # only the window was read (image and mask), never the whole raster
    assert reads and all(w is not None and (w.width, w.height) == (16, 16) for w in reads)
    assert len(corners) > 1  # random positions


def test_small_image_padded_with_zero_and_ignore(sample_dataset):
    spec = load_spec(sample_dataset)
    ds = SegmentationDataset(spec, spec.labelled()[:1], crop_size=200)  # sample images are 160 px
    img, mask = ds[0]
    assert tuple(img.shape) == (3, 200, 200)
    assert torch.all(img[:, 160:, :] == 0) and torch.all(img[:, :, 160:] == 0)
    assert torch.all(mask[160:, :] == 255) and torch.all(mask[:, 160:] == 255)
    assert (mask[:160, :160] != 255).float().mean() > 0.9


FULL_PIPELINE = [
    {"name": "HorizontalFlip", "p": 0.5},
    {"name": "VerticalFlip", "p": 0.5},
    {"name": "RandomRotate90", "p": 0.5},
    {"name": "Rotate", "limit": 30, "p": 0.5},
    {"name": "Affine", "scale": [0.8, 1.2], "p": 0.5},
    {"name": "RandomScale", "scale_limit": 0.2, "p": 0.5},
    {"name": "RandomBrightnessContrast", "brightness_limit": 0.05, "contrast_limit": 0.1, "p": 0.5},
    {"name": "GaussNoise", "std_range": [0.01, 0.03], "p": 0.5},
    {"name": "GaussianBlur", "blur_limit": [3, 5], "p": 0.3},
    {"name": "CoarseDropout", "num_holes_range": [1, 3], "hole_height_range": [0.1, 0.2],
     "hole_width_range": [0.1, 0.2], "p": 0.5},
]


def test_full_pipeline_on_4_band_uint16(geo_dataset):
    spec = load_spec(geo_dataset)
    assert spec.bands == 4
    mean, std = [3000.0] * 4, [2000.0] * 4
    ds = SegmentationDataset(spec, crop_size=24, augment=FULL_PIPELINE, mean=mean, std=std, samples_per_epoch=12)
    plain = SegmentationDataset(spec, crop_size=None, mean=mean, std=std)
    for i in range(12):
        np.random.seed(i)
        img, mask = ds[i]
        assert tuple(img.shape) == (4, 24, 24) and img.dtype == torch.float32
        assert torch.isfinite(img).all()
        assert set(torch.unique(mask).tolist()) <= {0, 1, 2, 255}
    # the data keep their scale: not squashed into 0..1 by albumentations
    img, _ = plain[2]
    assert img.min() < -0.5 and img.max() > 1.5


def test_brightness_contrast_on_normalised_floats(geo_dataset):
    spec = load_spec(geo_dataset)
    kw = dict(crop_size=None, mean=[3000.0] * 4, std=[2000.0] * 4)
    base = SegmentationDataset(spec, **kw)[1][0]
    aug = SegmentationDataset(spec, augment=[{"name": "RandomBrightnessContrast", "brightness_limit": [0.1, 0.1],
                                              "contrast_limit": [0, 0], "p": 1}], **kw)[1][0]
    inside = (base.abs() < AUG_RANGE_STD - 1)
    shift = (aug - base)[inside]
    # brightness 0.1 of the 0..1 pipeline range = 0.1 * 2 * AUG_RANGE_STD standard deviations
    np.testing.assert_allclose(shift.numpy(), 0.1 * 2 * AUG_RANGE_STD, atol=1e-4)


def test_coarse_dropout_holes_are_ignore(sample_dataset):
    spec = load_spec(sample_dataset)
    aug = [{"name": "CoarseDropout", "num_holes_range": [2, 2], "hole_height_range": [30, 30],
            "hole_width_range": [30, 30], "p": 1.0}]
    ds = SegmentationDataset(spec, spec.labelled()[:1], crop_size=None, augment=aug)
    plain = SegmentationDataset(spec, spec.labelled()[:1], crop_size=None)
    img, mask = ds[0]
    ref_img, ref_mask = plain[0]
    changed = (mask != ref_mask)
    assert changed.sum() > 900  # two 30x30 holes (possibly overlapping)
    assert torch.all(mask[changed] == 255)
    assert torch.all(img[:, changed] == 0)  # holes filled with the band mean


def test_rotation_borders_are_ignore(sample_dataset):
    spec = load_spec(sample_dataset)
    ds = SegmentationDataset(spec, spec.labelled()[:1], crop_size=None,
                             augment=[{"name": "Rotate", "limit": [45, 45], "p": 1.0}])
    img, mask = ds[0]
    assert torch.all(mask[0, :5] == 255) and torch.all(mask[-1, -5:] == 255)  # corners are outside
    assert torch.all(img[:, 0, 0] == 0)
    assert (mask[70:90, 70:90] != 255).all()


def test_compose_is_a_direct_attribute_and_reseedable(sample_dataset):
    spec = load_spec(sample_dataset)
    ds = SegmentationDataset(spec, spec.labelled()[:2], crop_size=64, augment=FULL_PIPELINE)
    comps = [v for v in ds.__dict__.values() if hasattr(v, "set_random_seed") and hasattr(v, "transforms")]
    assert len(comps) == 1

    def draw(seed):
        comps[0].set_random_seed(seed)
        np.random.seed(seed)
        return ds[1]

    a, b = draw(5), draw(5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("augment,needle", [
    ([{"name": "HorizontalFlip"}, {"name": "Flipz", "p": 0.5}], "augment[1]: 'Flipz'"),
    ([{"p": 0.5}], "augment[0]: needs 'name'"),
    ([{"name": "Rotate", "limitt": 30}], "unknown option 'limitt'"),
    ([{"name": "Rotate", "p": 7}], "augment[0] (Rotate): invalid options"),
    ("HorizontalFlip", "must be a list"),
])
def test_bad_augment_entries(sample_dataset, augment, needle):
    spec = load_spec(sample_dataset)
    with pytest.raises(ConfigError) as err:
        SegmentationDataset(spec, crop_size=32, augment=augment)
    assert needle in str(err.value)


def test_samples_per_epoch_cycles_samples(sample_dataset):
    spec = load_spec(sample_dataset)
    ds = SegmentationDataset(spec, spec.labelled()[:2], crop_size=None, samples_per_epoch=5)
    assert len(ds) == 5
    assert torch.equal(ds[0][1], ds[2][1]) and torch.equal(ds[1][1], ds[3][1])
    with pytest.raises(IndexError):
        ds[5]


def test_works_in_a_dataloader(geo_dataset):
    spec = load_spec(geo_dataset)
    ds = SegmentationDataset(spec, crop_size=16, augment=FULL_PIPELINE, samples_per_epoch=6,
                             mean=[3000.0] * 4, std=[2000.0] * 4)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert tuple(batch[0].shape) == (3, 4, 16, 16) and tuple(batch[1].shape) == (3, 16, 16)


def test_augmentations_differ_between_dataloader_workers(sample_dataset):
    spec = load_spec(sample_dataset)
    aug = [{"name": "Rotate", "limit": 90, "p": 1.0}, {"name": "GaussNoise", "std_range": [0.05, 0.1], "p": 1.0}]
    ds = SegmentationDataset(spec, spec.labelled()[:1], crop_size=None, augment=aug, samples_per_epoch=4)
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2)
    imgs = [b[0] for b in loader]  # items 0, 2 from worker 0 and 1, 3 from worker 1: same image
    assert not torch.equal(imgs[0], imgs[1]) and not torch.equal(imgs[0], imgs[2])
