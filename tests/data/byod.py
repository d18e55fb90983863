"""Generators for "bring your own data" tests: public-data-set layouts and imperfect masks.

Every generator draws class-index masks first (the truth the tests compare with), then writes them the
way other tools do: colours, JPEG, anti-aliased edges, palette PNGs, an index in the blue channel, or a
colormap scaled to each image.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

#: DeepGlobe land cover: 7 colour classes, black is the class "unknown"
DEEPGLOBE = [("urban_land", (0, 255, 255)), ("agriculture_land", (255, 255, 0)), ("rangeland", (255, 0, 255)),
             ("forest_land", (0, 255, 0)), ("water", (0, 0, 255)), ("barren_land", (255, 255, 255)),
             ("unknown", (0, 0, 0))]
COLORS = np.array([c for _, c in DEEPGLOBE], np.uint8)


def index_mask(rng: np.random.Generator, size: int = 64, n_classes: int = 7, seeds: int = 10,
               classes: list[int] | None = None) -> np.ndarray:
    """Voronoi regions of random classes: large flat areas with straight-ish boundaries, like land cover."""
    pts = rng.uniform(0, size, (seeds, 2))
    pool = np.array(classes if classes is not None else range(n_classes))
    labels = pool[rng.integers(0, len(pool), seeds)]
    labels[: min(len(pool), seeds)] = rng.permutation(pool)[: min(len(pool), seeds)]  # every class appears
    rr, cc = np.mgrid[0:size, 0:size] + 0.5
    d = (rr[..., None] - pts[:, 0]) ** 2 + (cc[..., None] - pts[:, 1]) ** 2
    return labels[d.argmin(-1)].astype(np.uint8)


def image_for(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An RGB image whose colour follows the class (so a tiny model has something to learn)."""
    base = COLORS[mask % len(COLORS)].astype(np.float32) * 0.6 + 40
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def antialiased(mask: np.ndarray, colors: np.ndarray, factor: int = 4, rng=None) -> np.ndarray:
    """Colours drawn at ``factor`` times the size and averaged down: edges mix the two class colours."""
    big = np.kron(mask, np.ones((factor, factor), np.uint8))
    # shift the fine grid a little so that boundaries do not fall on whole pixels only
    shift = 1 if rng is None else int(rng.integers(1, factor))
    big = np.roll(big, (shift, shift), (0, 1))
    rgb = colors[big].astype(np.float32)
    h, w = mask.shape
    return rgb.reshape(h, factor, w, factor, 3).mean((1, 3)).round().astype(np.uint8)


def jpeg_bytes(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def colormap(values: np.ndarray) -> np.ndarray:
    """A viridis-like colormap (linear between five anchors) of values in 0..1."""
    anchors = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], np.float64)
    x = np.clip(values, 0, 1) * (len(anchors) - 1)
    i = np.minimum(x.astype(int), len(anchors) - 2)
    t = (x - i)[..., None]
    return (anchors[i] * (1 - t) + anchors[i + 1] * t).round().astype(np.uint8)


def write_pairs(root: Path, n: int, image_path, mask_path, mask_writer, size: int = 64, seed: int = 0,
                image_ext: str = ".jpg") -> list[np.ndarray]:
    """``n`` image/mask pairs at ``image_path(i)``/``mask_path(i)`` (relative to ``root``); returns the truths."""
    rng = np.random.default_rng(seed)
    truths = []
    for i in range(n):
        mask = index_mask(rng, size)
        img_p, msk_p = root / image_path(i), root / mask_path(i)
        img_p.parent.mkdir(parents=True, exist_ok=True)
        msk_p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image_for(mask, rng)).save(img_p, **({"quality": 95} if image_ext == ".jpg" else {}))
        mask_writer(msk_p, mask, rng)
        truths.append(mask)
    return truths


def colour_png(path: Path, mask: np.ndarray, rng) -> None:
    Image.fromarray(COLORS[mask]).save(path)


def class_dict_csv(root: Path) -> None:
    lines = ["name,r,g,b"] + [f"{n},{c[0]},{c[1]},{c[2]}" for n, c in DEEPGLOBE]
    (root / "class_dict.csv").write_text("\n".join(lines) + "\n")


def deepglobe(root: Path, n: int = 6, size: int = 64, mask_writer=colour_png, seed: int = 0) -> list[np.ndarray]:
    """DeepGlobe land-cover layout: ``train/N_sat.jpg`` + ``train/N_mask.png``, unlabelled ``valid/N_sat.jpg``,
    ``class_dict.csv``."""
    truths = write_pairs(root, n, lambda i: f"train/{100 + i}_sat.jpg", lambda i: f"train/{100 + i}_mask.png",
                         mask_writer, size, seed)
    rng = np.random.default_rng(seed + 1)
    (root / "valid").mkdir(exist_ok=True)
    for i in range(2):
        Image.fromarray(image_for(index_mask(rng, size), rng)).save(root / "valid" / f"{900 + i}_sat.jpg")
    class_dict_csv(root)
    return truths
