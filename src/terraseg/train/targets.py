"""On-the-fly targets for the conditioned multitask ResUNet-a (Diakogiannis et al. 2020).

From each training mask and image the multitask heads get:

* ``boundary`` ``(K, H, W)``: 1 where a pixel of class *k* touches a pixel of another label (its
  class region's edge, one-pixel wide, inside the region), else 0.
* ``distance`` ``(K, H, W)``: per class, the Euclidean distance of each class pixel to the nearest
  pixel outside the class, divided by its maximum in the crop (0 outside, 1 at the deepest interior).
* ``color`` ``(3, H, W)``: the image in HSV, each channel scaled to [0, 1].

Computed with OpenCV (installed with albumentations) on CPU inside the data loader workers.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch

from terraseg.normalisation import Normaliser

_KERNEL = np.ones((3, 3), np.uint8)


def boundary_targets(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, H, W)`` float32 one-pixel boundaries of each class region (see module docstring)."""
    mask = np.asarray(mask)
    out = np.zeros((num_classes,) + mask.shape, np.float32)
    for k in range(num_classes):
        m = (mask == k).astype(np.uint8)
        if not m.any():
            continue
        # erosion with the default border (max value) keeps the image edge out of the boundary
        inner = cv2.erode(m, _KERNEL)
        out[k] = (m - inner).astype(np.float32)
    return out


def distance_targets(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, H, W)`` float32 normalised distance transform of each class mask."""
    mask = np.asarray(mask)
    out = np.zeros((num_classes,) + mask.shape, np.float32)
    for k in range(num_classes):
        m = (mask == k).astype(np.uint8)
        if not m.any():
            continue
        d = cv2.distanceTransform(m, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        top = float(d.max())
        if top > 0:
            out[k] = d / top
    return out


def hsv_target(rgb01: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` float32 HSV in [0, 1] from an ``(H, W, 3)`` RGB image in [0, 1]."""
    rgb = np.clip(np.asarray(rgb01, np.float32), 0.0, 1.0)
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)  # H in degrees [0, 360)
    hsv[..., 0] /= 360.0
    return np.clip(hsv, 0.0, 1.0).transpose(2, 0, 1).copy()


class MultitaskTargets:
    """Callable ``(image tensor (C, H, W) normalised, mask tensor (H, W)) -> dict of target tensors``.

    The normalised image is mapped back to raw units with ``mean``/``std`` and to [0, 1] by the
    8-bit range (or, for other data, by ``mean + 3 std`` per band) before the HSV conversion; data
    with fewer than three bands repeats its first band.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None):
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.normaliser = None if mean is None or std is None else Normaliser(mean, std, len(mean))

    def to_unit(self, image: np.ndarray) -> np.ndarray:
        """Normalised ``(C, H, W)`` -> ``(H, W, 3)`` in [0, 1]."""
        img = np.asarray(image, np.float32)
        c = img.shape[0]
        if self.normaliser is not None:
            raw = self.normaliser.inverse(img, channel_axis=0)
            mean, std = self.normaliser.mean, self.normaliser.std
            ref = 255.0 if float(mean.max()) <= 255.0 else (mean + 3 * std)[:c].reshape(-1, 1, 1)
            unit = raw / ref
        else:  # unknown normalisation: assume roughly zero-mean unit-variance values
            unit = img * 0.25 + 0.5
        if c >= 3:
            unit = unit[:3]
        else:
            unit = np.repeat(unit[:1], 3, axis=0)
        return np.clip(unit, 0, 1).transpose(1, 2, 0)

    def __call__(self, image, mask) -> dict[str, torch.Tensor]:
        m = mask.numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
        img = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        return {
            "boundary": torch.from_numpy(boundary_targets(m, self.num_classes)),
            "distance": torch.from_numpy(distance_targets(m, self.num_classes)),
            "color": torch.from_numpy(hsv_target(self.to_unit(img))),
        }


__all__ = ["MultitaskTargets", "boundary_targets", "distance_targets", "hsv_target"]
