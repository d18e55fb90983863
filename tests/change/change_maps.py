"""Class maps for the assessment tests: real GeoTIFFs written with rasterio, names as terraseg writes them."""

from __future__ import annotations

import json

import numpy as np


def write_class_map(path, classes, crs, transform, names=None, nodata=255, colors=None):
    """A uint8 GeoTIFF of class indices; ``names`` go into the CLASSES/COLORS tags (as terraseg's class maps)."""
    import rasterio

    classes = np.asarray(classes, np.uint8)
    profile = {"driver": "GTiff", "width": classes.shape[1], "height": classes.shape[0], "count": 1,
               "dtype": "uint8", "crs": crs, "transform": transform, "compress": "deflate", "tiled": True}
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(classes, 1)
        if names is not None:
            colors = colors or [[(37 * i) % 256, (91 * i) % 256, (53 * i + 80) % 256] for i in range(len(names))]
            dst.update_tags(CLASSES=json.dumps(list(names)), COLORS=json.dumps([list(c) for c in colors]))
    return path
