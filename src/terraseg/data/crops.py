"""Where training crops come from: which image, and where in it.

Two rules, combined per crop (every draw uses numpy's global generator, which the training code
seeds per item, so crops are reproducible and differ between items, workers and processes):

* ``mode``: ``uniform`` takes each image equally often (item ``i`` -> image ``i % n``); ``area``
  draws the image with probability proportional to its pixel count, so a large scene is seen as
  often as its size deserves instead of as often as a small chip.
* ``class_balance`` ``p``: with probability ``p`` the crop is centred on a pixel of one class chosen
  uniformly among the classes present in the training masks (the image drawn by that class's pixel
  count, the pixel uniformly among up to ``POINTS_PER_CLASS`` pixels remembered per image and class).
  Rare classes (roads, vegetation on Dubai) then appear in far more crops than their pixel share.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from terraseg.errors import ConfigError

#: Pixels remembered per (image, class) for class-balanced crops: enough variety, little memory.
POINTS_PER_CLASS = 512
MODES = ("uniform", "area")


class CropPicker:
    """Chooses ``(image index, centre (y, x) or None)`` for each training crop.

    ``sizes`` are the ``(height, width)`` of the images; ``read_mask(i)`` returns image ``i``'s class
    index mask (only called when ``class_balance > 0``, once per image, at construction).
    """

    def __init__(self, sizes: Sequence[tuple[int, int]], num_classes: int, mode: str = "uniform",
                 class_balance: float = 0.0, read_mask: Callable[[int], np.ndarray] | None = None,
                 seed: int = 0):
        if mode not in MODES:
            raise ConfigError(f"data.sampling.mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not 0.0 <= float(class_balance) <= 1.0:
            raise ConfigError(f"data.sampling.class_balance must be in [0, 1], got {class_balance!r}")
        self.mode = mode
        self.class_balance = float(class_balance)
        self.n = len(sizes)
        area = np.array([h * w for h, w in sizes], np.float64)
        self.area_p = area / area.sum()
        self.class_pixels = np.zeros((self.n, num_classes), np.int64)
        self.points: dict[tuple[int, int], np.ndarray] = {}
        if self.class_balance > 0:
            if read_mask is None:  # pragma: no cover - programming error
                raise ValueError("class_balance needs read_mask")
            rng = np.random.default_rng(seed)
            for i in range(self.n):
                self._index(i, read_mask(i), num_classes, rng)
        present = self.class_pixels.sum(0) > 0
        self.classes = np.flatnonzero(present)

    def _index(self, i: int, mask: np.ndarray, num_classes: int, rng: np.random.Generator) -> None:
        flat = mask.ravel()
        labelled = np.flatnonzero(flat < num_classes)
        if labelled.size == 0:
            return
        classes = flat[labelled]
        order = np.argsort(classes, kind="stable")
        counts = np.bincount(classes, minlength=num_classes)[:num_classes]
        self.class_pixels[i] = counts
        starts = np.concatenate([[0], np.cumsum(counts)])
        w = mask.shape[1]
        for c in np.flatnonzero(counts):
            members = labelled[order[starts[c]:starts[c + 1]]]
            if members.size > POINTS_PER_CLASS:
                members = rng.choice(members, POINTS_PER_CLASS, replace=False)
            self.points[(i, int(c))] = np.stack([members // w, members % w], 1).astype(np.int32)

    def pick(self, index: int) -> tuple[int, tuple[int, int] | None]:
        """The image (and crop centre, for a class-balanced crop) of item ``index``."""
        if self.class_balance > 0 and self.classes.size and np.random.random() < self.class_balance:
            c = int(self.classes[np.random.randint(self.classes.size)])
            weights = self.class_pixels[:, c].astype(np.float64)
            i = int(np.random.choice(self.n, p=weights / weights.sum()))
            pts = self.points[(i, c)]
            y, x = pts[np.random.randint(len(pts))]
            return i, (int(y), int(x))
        if self.mode == "area":
            return int(np.random.choice(self.n, p=self.area_p)), None
        return index % self.n, None


def crop_window(height: int, width: int, crop: tuple[int, int], centre: tuple[int, int] | None):
    """``(row, col, h, w)`` of a crop inside an image: random, or centred on ``centre`` (clamped to
    the image), or ``None`` when the crop covers the whole image."""
    ch, cw = min(crop[0], height), min(crop[1], width)
    if ch == height and cw == width:
        return None
    if centre is None:
        y = int(np.random.randint(0, height - ch + 1))
        x = int(np.random.randint(0, width - cw + 1))
    else:
        y = min(max(centre[0] - ch // 2, 0), height - ch)
        x = min(max(centre[1] - cw // 2, 0), width - cw)
    return y, x, ch, cw


__all__ = ["CropPicker", "crop_window", "MODES", "POINTS_PER_CLASS"]
