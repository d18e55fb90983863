"""A small labelled sample generated procedurally (no downloads) for the demo and the tests.

Each scene has bare land with texture, vegetation patches, a water body (lake or river), roads
with lane markings and buildings with differently coloured roofs and cast shadows, then lighting
gradients, blur and sensor noise, so that a model has something real to learn. Masks are RGB colour
masks; a few pixels are left unlabelled (black, ignored by the dataset YAML).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from terraseg.data.palette import Color, colorize, to_hex

#: (name, mask colour) of the sample's classes, in class-index order.
SAMPLE_CLASSES: list[tuple[str, Color]] = [
    ("water", (31, 120, 180)),
    ("road", (160, 160, 160)),
    ("building", (227, 26, 28)),
    ("vegetation", (51, 160, 44)),
    ("bare land", (253, 191, 111)),
]
WATER, ROAD, BUILDING, VEGETATION, BARE = range(5)
UNLABELLED = 255


def _smooth_noise(rng: np.random.Generator, size: int, cell: int) -> np.ndarray:
    """Value noise in 0..1: a coarse random grid upsampled bicubically."""
    from PIL import Image

    n = max(2, size // max(cell, 1) + 2)
    low = rng.random((n, n)).astype(np.float32)
    up = np.array(Image.fromarray(low).resize((size, size), Image.BICUBIC), dtype=np.float32)
    up -= up.min()
    return up / max(float(up.max()), 1e-6)


def _fractal(rng: np.random.Generator, size: int, cells=(48, 16, 6), weights=(0.6, 0.3, 0.1)) -> np.ndarray:
    out = sum(w * _smooth_noise(rng, size, c) for c, w in zip(cells, weights))
    out -= out.min()
    return out / max(float(out.max()), 1e-6)


def _scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, ImageDraw, ImageFilter

    s = size
    label = np.full((s, s), BARE, np.uint8)

    # vegetation: patches where a smooth field is high
    veg = _fractal(rng, s)
    label[veg > rng.uniform(0.58, 0.7)] = VEGETATION

    # water: a lake (blob) or a river (thick wavy band)
    if rng.random() < 0.5:
        cy, cx = rng.uniform(0.2, 0.8, 2) * s
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
        r = np.hypot((yy - cy) / rng.uniform(0.6, 1.4), xx - cx) / (s * rng.uniform(0.15, 0.28))
        lake = r + 0.6 * (_smooth_noise(rng, s, 24) - 0.5)
        label[lake < 1.0] = WATER
    else:
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
        phase, amp, freq = rng.uniform(0, 6.28), rng.uniform(0.05, 0.15) * s, rng.uniform(1, 3) * 6.28 / s
        centre = rng.uniform(0.25, 0.75) * s + amp * np.sin(freq * xx + phase)
        width = rng.uniform(0.05, 0.1) * s * (0.8 + 0.4 * _smooth_noise(rng, s, 32))
        dist = np.abs(yy - centre)
        river = dist < width
        if rng.random() < 0.5:
            river = river.T
        label[river] = WATER

    # roads: straight segments across the scene, drawn on top (bridges over water are fine)
    lab_img = Image.fromarray(label)
    draw = ImageDraw.Draw(lab_img)
    road_lines = []
    for _ in range(int(rng.integers(1, 4))):
        w = int(rng.integers(max(3, s // 40), max(5, s // 18)))
        if rng.random() < 0.5:
            y0, y1 = rng.uniform(0, s, 2)
            line = [(0, float(y0)), (s, float(y1))]
        else:
            x0, x1 = rng.uniform(0, s, 2)
            line = [(float(x0), 0), (float(x1), s)]
        draw.line(line, fill=ROAD, width=w)
        road_lines.append((line, w))
    label = np.asarray(lab_img).copy()

    # buildings: rotated rectangles on land (not on water or roads), each with a roof colour
    roofs = []
    lab_img = Image.fromarray(label)
    draw = ImageDraw.Draw(lab_img)
    n_buildings = int(rng.integers(6, 14) * (s / 160) ** 2)
    placed = 0
    for _ in range(n_buildings * 4):
        if placed >= n_buildings:
            break
        bw, bh = rng.uniform(s / 30, s / 10, 2)
        cx, cy = rng.uniform(bw, s - bw), rng.uniform(bh, s - bh)
        ang = rng.uniform(0, np.pi / 2) if rng.random() < 0.5 else 0.0
        ca, sa = np.cos(ang), np.sin(ang)
        corners = [(cx + ca * dx - sa * dy, cy + sa * dx + ca * dy)
                   for dx, dy in ((-bw / 2, -bh / 2), (bw / 2, -bh / 2), (bw / 2, bh / 2), (-bw / 2, bh / 2))]
        x0, x1 = int(max(0, cx - bw)), int(min(s, cx + bw + 1))
        y0, y1 = int(max(0, cy - bh)), int(min(s, cy + bh + 1))
        under = label[y0:y1, x0:x1]
        if np.isin(under, (WATER, ROAD, BUILDING)).any():
            continue
        draw.polygon(corners, fill=BUILDING)
        label = np.asarray(lab_img).copy()
        roofs.append(corners)
        placed += 1
    label = np.asarray(lab_img).copy()

    # --- appearance
    fine = rng.normal(0, 1, (s, s, 3)).astype(np.float32)
    tex = _fractal(rng, s, cells=(20, 6, 2), weights=(0.5, 0.3, 0.2))[..., None]
    img = np.zeros((s, s, 3), np.float32)
    base = {
        BARE: np.array([196, 170, 128]) + rng.normal(0, 8, 3),
        VEGETATION: np.array([72, 108, 52]) + rng.normal(0, 8, 3),
        WATER: np.array([42, 72, 108]) + rng.normal(0, 6, 3),
        ROAD: np.array([118, 118, 122]) + rng.normal(0, 6, 3),
    }
    amp = {BARE: 40.0, VEGETATION: 45.0, WATER: 14.0, ROAD: 14.0}
    for cls, colour in base.items():
        m = label == cls
        img[m] = colour + (tex[m] - 0.5) * amp[cls] + fine[m] * (6 if cls != WATER else 3)
    # darker vegetation cores and water ripples
    img[label == VEGETATION] *= (0.85 + 0.3 * _smooth_noise(rng, s, 5)[label == VEGETATION])[:, None]
    ripples = 0.5 + 0.5 * np.sin(np.arange(s, dtype=np.float32) * rng.uniform(0.4, 0.9))[:, None]
    img[label == WATER] += (ripples * np.ones((1, s), np.float32))[label == WATER][:, None] * 6

    # building roofs, shadows on the ground beside them
    img_pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img_pil)
    sh = max(1, s // 80)
    for corners in roofs:
        shadow = [(x + sh, y + sh) for x, y in corners]
        draw.polygon(shadow, fill=(70, 64, 58))
    roof_colours = [(205, 205, 200), (176, 96, 72), (96, 96, 104), (186, 176, 150), (150, 170, 190)]
    for corners in roofs:
        c = np.array(roof_colours[int(rng.integers(len(roof_colours)))]) + rng.normal(0, 10, 3)
        draw.polygon(corners, fill=tuple(int(v) for v in np.clip(c, 0, 255)))
    # lane markings (dashed) on wide roads
    for line, w in road_lines:
        if w >= 6:
            (xa, ya), (xb, yb) = line
            n = 12
            for k in range(0, n, 2):
                t0, t1 = k / n, (k + 0.6) / n
                draw.line([(xa + (xb - xa) * t0, ya + (yb - ya) * t0), (xa + (xb - xa) * t1, ya + (yb - ya) * t1)],
                          fill=(225, 225, 215), width=1)
    img = np.asarray(img_pil.filter(ImageFilter.GaussianBlur(0.6)), dtype=np.float32)
    # the shadows fall on land pixels whose label stays unchanged: the ground truth is the ground

    # lighting gradient, contrast jitter, sensor noise
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
    gx, gy = rng.uniform(-0.15, 0.15, 2)
    img *= (1 + gx * (xx - 0.5) + gy * (yy - 0.5))[..., None]
    img = (img - 128) * rng.uniform(0.85, 1.15) + 128 + rng.uniform(-12, 12)
    img += rng.normal(0, 5, img.shape)
    image = np.clip(img, 0, 255).astype(np.uint8)

    # a few unlabelled pixels (annotation gaps)
    for _ in range(int(rng.integers(1, 3))):
        py, px = rng.integers(0, s - 4, 2)
        label[py:py + int(rng.integers(2, 5)), px:px + int(rng.integers(2, 5))] = UNLABELLED
    return image, label


def _mosaic(rng: np.random.Generator, size: int, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` scene made of ``tile`` x ``tile`` scenes side by side.

    ``_scene`` draws its objects relative to the scene size (buildings of 1/30 to 1/10 of the side,
    roads of 1/40 to 1/18), so one 3000-pixel scene would hold 300-pixel buildings and 150-pixel roads
    that no model trained on 256-pixel scenes has seen. A mosaic of training-size scenes keeps the
    scale and appearance of the training sample at any size (objects end at the tile seams)."""
    n = -(-size // tile)
    image = np.zeros((n * tile, n * tile, 3), np.uint8)
    label = np.zeros((n * tile, n * tile), np.uint8)
    for r in range(n):
        for c in range(n):
            image[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile], label[r * tile:(r + 1) * tile,
                                                                          c * tile:(c + 1) * tile] = _scene(rng, tile)
    return image[:size, :size], label[:size, :size]


def generate_sample(out_dir: str | Path, n_images: int = 8, size: int = 256, seed: int = 0,
                    fmt: str = "png", tile: int | None = None) -> Path:
    """Write ``n_images`` scenes to ``out_dir/images`` and RGB colour masks to ``out_dir/masks``.

    ``fmt="tif"`` writes georeferenced GeoTIFF images and masks (UTM zone 40N, 0.5 m pixels)
    instead of PNG. ``tile``: build scenes larger than ``tile`` as a mosaic of ``tile``-sized scenes,
    so that a large scene has the object sizes and appearance of a sample generated at ``tile``.
    Returns the path of the written ``dataset.yaml``.
    """
    from terraseg._progress import track
    from terraseg.data.raster import write_raster
    from terraseg.data.spec import dump_yaml
    from terraseg._io import write_text_atomic
    from terraseg.errors import ConfigError

    if n_images < 1:
        raise ConfigError(f"n_images must be at least 1, got {n_images}")
    if size < 32:
        raise ConfigError(f"size must be at least 32 pixels, got {size}")
    if fmt not in ("png", "tif"):
        raise ConfigError(f"format {fmt!r} is not 'png' or 'tif'")
    if tile is not None and tile < 32:
        raise ConfigError(f"tile must be at least 32 pixels, got {tile}")
    out = Path(out_dir)
    colors = [c for _, c in SAMPLE_CLASSES]
    for i in track(range(n_images), total=n_images, description="generating sample"):
        rng = np.random.default_rng([seed, i])
        image, label = _mosaic(rng, size, tile) if tile and size > tile else _scene(rng, size)
        mask = colorize(label, colors, ignore_color=(0, 0, 0))
        name = f"scene_{i:03d}.{fmt}"
        if fmt == "tif":
            from affine import Affine
            from rasterio.crs import CRS

            transform = Affine(0.5, 0, 500000 + i * size * 0.5, 0, -0.5, 2790000)
            crs = CRS.from_epsg(32640)
            write_raster(out / "images" / name, image, crs=crs, transform=transform)
            write_raster(out / "masks" / name, mask, crs=crs, transform=transform)
        else:
            write_raster(out / "images" / name, image)
            write_raster(out / "masks" / name, mask)
    spec = {
        "name": "terraseg-sample",
        "description": f"procedural sample: {n_images} scenes of {size}x{size} px, seed {seed}",
        "images": "images",
        "masks": "masks",
        "bands": 3,
        "classes": [{"name": n, "color": to_hex(c)} for n, c in SAMPLE_CLASSES],
        "ignore": ["#000000"],
        "ignore_index": 255,
    }
    return write_text_atomic(out / "dataset.yaml", dump_yaml(spec))
