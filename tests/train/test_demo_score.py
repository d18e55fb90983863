"""The demo scores its large map against the scene's own mask (checked with scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest


def test_score_map_matches_scikit_learn(tmp_path):
    from sklearn.metrics import accuracy_score, jaccard_score

    from terraseg.data.raster import read_raster, write_raster
    from terraseg.data.sample import generate_sample
    from terraseg.data.spec import load_spec
    from terraseg.demo import score_map

    scene_yaml = generate_sample(tmp_path / "scene", n_images=1, size=96, seed=7, fmt="tif", tile=48)
    spec = load_spec(scene_yaml)
    mask, _ = spec.read_mask(spec.labelled()[0])
    rng = np.random.default_rng(0)
    pred = mask.copy()
    flip = rng.random(mask.shape) < 0.2
    pred[flip] = rng.integers(0, spec.num_classes, int(flip.sum()))
    pred[pred == spec.ignore_index] = 0  # a map predicts a class everywhere
    write_raster(tmp_path / "pred.tif", pred[..., None])
    assert np.array_equal(read_raster(tmp_path / "pred.tif")[..., 0], pred)

    score = score_map(tmp_path / "pred.tif", scene_yaml)
    keep = mask != spec.ignore_index
    assert score["pixel_accuracy"] == pytest.approx(accuracy_score(mask[keep], pred[keep]))
    ious = jaccard_score(mask[keep], pred[keep], average=None, labels=list(range(spec.num_classes)))
    assert score["miou"] == pytest.approx(float(np.mean(ious)))
    assert list(score["per_class_iou"].values()) == pytest.approx(list(ious))


def test_a_mosaic_scene_keeps_the_object_sizes_of_the_training_sample(tmp_path):
    from terraseg.data.sample import BUILDING, _mosaic, _scene

    def building_sizes(label):
        import cv2

        n, _, stats, _ = cv2.connectedComponentsWithStats((label == BUILDING).astype(np.uint8))
        return np.median(stats[1:, cv2.CC_STAT_AREA]) if n > 1 else 0

    rng = np.random.default_rng(1)
    small = np.median([building_sizes(_scene(rng, 128)[1]) for _ in range(4)])
    mosaic = building_sizes(_mosaic(np.random.default_rng(2), 512, 128)[1])
    whole = building_sizes(_scene(np.random.default_rng(3), 512)[1])
    assert 0.5 * small < mosaic < 2 * small  # same size as in training scenes
    assert whole > 4 * small  # one scene drawn at 512 px has buildings 16x the area


def test_demo_scores_the_builtin_model_on_the_real_scene_as_scikit_learn_does(tmp_path):
    """Step 0 of `make demo`: the built-in model's map of the shipped Dubai scene, scored against the
    mask decoded here from the data set README's colours."""
    from PIL import Image
    from sklearn.metrics import accuracy_score, jaccard_score

    from terraseg.data.raster import read_raster
    from terraseg.demo import builtin_scene

    result = builtin_scene(tmp_path / "builtin")
    assert {"classes", "overlay"} <= set(result["outputs"])
    pred = read_raster(result["outputs"]["classes"], palette_indices=True)[..., 0]
    rgb = np.asarray(Image.open(result["image"].replace("dubai-scene.jpg", "dubai-scene-mask.png")).convert("RGB"))
    colours = [(60, 16, 152), (132, 41, 246), (110, 193, 228), (254, 221, 58), (226, 169, 41)]
    mask = np.full(rgb.shape[:2], 255, np.uint8)
    for i, c in enumerate(colours):
        mask[(rgb == c).all(axis=-1)] = i
    keep = mask != 255
    assert result["score"]["pixel_accuracy"] == pytest.approx(accuracy_score(mask[keep], pred[keep]))
    ious = jaccard_score(mask[keep], pred[keep], average=None, labels=list(range(5)))
    assert result["score"]["miou"] == pytest.approx(float(np.mean(ious)))
