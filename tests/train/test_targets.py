"""Multitask ResUNet-a targets: boundaries, distance transform, HSV colour."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch

from terraseg.train.targets import MultitaskTargets, boundary_targets, distance_targets, hsv_target


def square_mask():
    m = np.zeros((9, 9), np.uint8)
    m[2:7, 2:7] = 1  # a 5x5 square of class 1 on class 0
    return m


def test_boundary_is_one_pixel_ring_inside_each_region():
    b = boundary_targets(square_mask(), 3)
    ring = np.zeros((9, 9), bool)
    ring[2:7, 2:7] = True
    ring[3:6, 3:6] = False
    assert np.array_equal(b[1] > 0, ring)
    outer = np.zeros((9, 9), bool)
    outer[1:8, 1:8] = True
    outer[2:7, 2:7] = False  # class 0 pixels touching the square; the image edge is not a boundary
    assert np.array_equal(b[0] > 0, outer)
    assert not b[2].any()  # absent class


def test_distance_is_normalised_per_class():
    d = distance_targets(square_mask(), 3)
    assert d.shape == (3, 9, 9) and d.dtype == np.float32
    assert d[1].max() == pytest.approx(1.0) and d[1, 4, 4] == pytest.approx(1.0)  # centre of the square
    assert d[1, 2, 2] < d[1, 3, 3] < d[1, 4, 4]
    assert (d[1][square_mask() == 0] == 0).all()
    assert d[0].max() == pytest.approx(1.0) and (d[0][square_mask() == 1] == 0).all()
    assert not d[2].any()


def test_hsv_matches_colorsys():
    rng = np.random.default_rng(0)
    rgb = rng.random((4, 5, 3)).astype(np.float32)
    hsv = hsv_target(rgb)
    assert hsv.shape == (3, 4, 5)
    for y, x in [(0, 0), (1, 3), (3, 4)]:
        expect = colorsys.rgb_to_hsv(*rgb[y, x])
        assert hsv[:, y, x] == pytest.approx(expect, abs=1e-3)


def test_targets_from_normalised_tensors():
    mean, std = [100.0, 110.0, 120.0], [50.0, 40.0, 30.0]
    raw = np.random.default_rng(1).integers(0, 256, (3, 9, 9)).astype(np.float32)
    norm = (raw - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    t = MultitaskTargets(3, 255, mean, std)(torch.from_numpy(norm.astype(np.float32)),
                                           torch.from_numpy(square_mask().astype(np.int64)))
    assert set(t) == {"boundary", "distance", "color"}
    assert t["boundary"].shape == (3, 9, 9) and t["distance"].shape == (3, 9, 9)
    expect_v = raw.max(0) / 255.0  # HSV value = max channel
    assert np.allclose(t["color"][2].numpy(), expect_v, atol=1e-3)
