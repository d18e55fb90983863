"""Fixtures of the data-toolkit tests: small generated GeoTIFF data sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from terraseg.data.palette import to_hex

GEO_CLASSES = [("water", (0, 0, 255)), ("field", (0, 255, 0)), ("town", (255, 0, 0))]


def make_geotiff_set(root: Path, n: int = 3, size=(40, 56), bands: int = 4, dtype="uint16", seed: int = 0,
                     index_masks: bool = True, coord_pattern: bool = False) -> Path:
    """``n`` georeferenced multi-band images + masks under ``root``; returns the dataset YAML.

    Image pixel values are random per image with different means/spreads (so per-image stds differ
    from the global std). With ``coord_pattern`` band 0 holds ``row * W + col`` and the mask class is
    ``(row + col) % 3`` so crops can be located.
    """
    import rasterio
    from rasterio.transform import from_origin

    from terraseg.data.spec import dump_yaml

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    h, w = size
    for i in range(n):
        scale = 1000 * (i + 1)
        img = rng.normal(2000 + 1500 * i, scale, (bands, h, w)).clip(0, 60000)
        img = img.astype(dtype)
        rr, cc = np.mgrid[0:h, 0:w]
        if coord_pattern:
            img[0] = (rr * w + cc).astype(dtype)
            mask = ((rr + cc) % 3).astype(np.uint8)
        else:
            mask = rng.integers(0, 3, (h, w)).astype(np.uint8)
            mask[: h // 4] = 0  # unbalanced classes
        transform = from_origin(500000 + 1000 * i, 2700000, 0.5, 0.5)
        prof = dict(driver="GTiff", width=w, height=h, crs="EPSG:32640", transform=transform)
        with rasterio.open(root / "images" / f"scene_{i}.tif", "w", count=bands, dtype=dtype, **prof) as dst:
            dst.write(img)
        if index_masks:
            with rasterio.open(root / "masks" / f"scene_{i}.tif", "w", count=1, dtype="uint8", **prof) as dst:
                dst.write(mask[None])
        else:
            colors = np.array([c for _, c in GEO_CLASSES], np.uint8)
            with rasterio.open(root / "masks" / f"scene_{i}.tif", "w", count=3, dtype="uint8", **prof) as dst:
                dst.write(np.moveaxis(colors[mask], -1, 0))
    if index_masks:
        classes = [{"name": n_, "value": k} for k, (n_, _) in enumerate(GEO_CLASSES)]
    else:
        classes = [{"name": n_, "color": to_hex(c)} for n_, c in GEO_CLASSES]
    spec = {"name": "geo", "images": "images", "masks": "masks", "bands": bands, "classes": classes,
            "ignore_index": 255}
    path = root / "dataset.yaml"
    path.write_text(dump_yaml(spec))
    return path


@pytest.fixture
def geo_dataset(tmp_path) -> Path:
    return make_geotiff_set(tmp_path / "geo")
