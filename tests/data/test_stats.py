from __future__ import annotations

import numpy as np
import rasterio

from terraseg.data.spec import load_spec
from terraseg.data.stats import RunningStats, compute_stats, median_frequency_weights, write_stats_to_yaml

from .conftest import make_geotiff_set


def _all_pixels(spec):
    arrs = []
    for s in spec.items():
        with rasterio.open(s.image) as ds:
            arrs.append(ds.read().reshape(ds.count, -1))
    return np.concatenate(arrs, axis=1).astype(np.float64)


def test_exact_mean_std_on_4_band_uint16(tmp_path, monkeypatch):
    import terraseg.data.stats as st

    monkeypatch.setattr(st, "ROW_BLOCK", 7)  # several windows per image
    yaml = make_geotiff_set(tmp_path / "g", n=3, size=(33, 45), bands=4, dtype="uint16")
    spec = load_spec(yaml)
    stats = compute_stats(spec, progress=False)
    allpx = _all_pixels(spec)
    np.testing.assert_allclose(stats.mean, allpx.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(stats.std, allpx.std(axis=1), rtol=1e-10)
    assert stats.pixels == allpx.shape[1] and stats.bands == 4
    assert stats.min == list(allpx.min(axis=1)) and stats.max == list(allpx.max(axis=1))
    # not the mean of per-image stds (the images have different means)
    per_image = [np.moveaxis(spec.read_image(s), -1, 0).reshape(4, -1).astype(np.float64).std(axis=1)
                 for s in spec.items()]
    assert np.all(np.abs(np.mean(per_image, axis=0) - np.array(stats.std)) > 0.05 * np.array(stats.std))


def test_float_bands_and_nodata_excluded(tmp_path):
    yaml = make_geotiff_set(tmp_path / "g", n=2, size=(20, 30), bands=2, dtype="float32")
    spec = load_spec(yaml)
    s = spec.items()[0]
    with rasterio.open(s.image, "r+") as ds:
        a = ds.read()
        a[:, :5, :] = -9999
        ds.write(a)
        ds.nodata = -9999
    spec = load_spec(yaml)
    stats = compute_stats(spec, progress=False)
    allpx = _all_pixels(spec)
    valid = ~(allpx == -9999).all(axis=0)
    np.testing.assert_allclose(stats.mean, allpx[:, valid].mean(axis=1), rtol=1e-9)
    np.testing.assert_allclose(stats.std, allpx[:, valid].std(axis=1), rtol=1e-9)
    assert stats.pixels == int(valid.sum())


def test_class_frequency_and_median_frequency_weights(tmp_path):
    yaml = make_geotiff_set(tmp_path / "g", n=3, size=(16, 16), bands=1, dtype="uint8")
    spec = load_spec(yaml)
    stats = compute_stats(spec, progress=False)
    masks = [spec.read_mask(s)[0] for s in spec.items()]
    counts = np.bincount(np.concatenate([m.ravel() for m in masks]), minlength=3)[:3]
    assert stats.class_pixels == counts.tolist()
    np.testing.assert_allclose(stats.class_frequency, counts / counts.sum())
    # every class appears in every image here: f_c = count_c / all pixels, w_c = median(f) / f_c
    f = counts / counts.sum()
    np.testing.assert_allclose(stats.class_weights, np.median(f) / f)


def test_median_frequency_absent_class_gets_zero():
    w = median_frequency_weights([10, 30, 0], [100, 100, 0])
    assert w[2] == 0 and np.isclose(w[0], 3 * w[1]) and np.isclose(w[0], 0.2 / 0.1)


def test_running_stats_merge_matches_numpy():
    rng = np.random.default_rng(3)
    x = rng.normal(1e4, 3, (5000, 2))  # large mean, small spread: naive sums would lose digits
    r = RunningStats(2)
    for chunk in np.array_split(x, 7):
        r.update(chunk)
    np.testing.assert_allclose(r.mean, x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(r.std, x.std(axis=0), rtol=1e-9)


def test_write_mean_std_into_yaml(tmp_path, sample_dataset):
    import shutil

    shutil.copytree(sample_dataset.parent, tmp_path / "s")
    yaml = tmp_path / "s" / "dataset.yaml"
    stats = compute_stats(yaml, progress=False)
    write_stats_to_yaml(yaml, stats)
    write_stats_to_yaml(yaml, stats)  # replacing, not duplicating
    spec = load_spec(yaml)
    np.testing.assert_allclose(spec.mean, stats.mean, rtol=1e-5)
    np.testing.assert_allclose(spec.std, stats.std, rtol=1e-5)
    assert yaml.read_text().count("mean:") == 1


def test_class_only_stats_match_full(tmp_path):
    yaml = make_geotiff_set(tmp_path / "g", n=3, size=(16, 16), bands=1, dtype="uint8")
    spec = load_spec(yaml)
    full = compute_stats(spec, progress=False)
    only = compute_stats(spec, images=False, progress=False)
    assert only.mean == [] and only.class_pixels == full.class_pixels
    assert only.class_weights == full.class_weights


def test_write_replaces_block_style_lists(tmp_path, sample_dataset):
    import shutil

    shutil.copytree(sample_dataset.parent, tmp_path / "s")
    yaml = tmp_path / "s" / "dataset.yaml"
    yaml.write_text(yaml.read_text() + "mean:\n  - 1\n  - 2\n  - 3\nstd:\n- 1\n- 1\n- 1\n")
    stats = compute_stats(yaml, progress=False)
    write_stats_to_yaml(yaml, stats)
    np.testing.assert_allclose(load_spec(yaml).mean, stats.mean, rtol=1e-5)
