"""The image as the app shows it (no Qt here): opened through ``terraseg.data.source.open_source``.

``open_image(path)`` reads the size, bands, georeference and a downsampled preview (GDAL overviews or
decimated reads for GeoTIFFs, DCT-domain downscaling for JPEGs) without ever holding the full
resolution of a GDAL raster; prediction later streams the file through ``terraseg.predict.predict_file``
like ``terraseg predict``. Alpha bands and GDAL masks are the validity mask, as everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from terraseg.data.source import RASTER_SUFFIXES
from terraseg.errors import DataError

PREVIEW_MAX_SIDE = 2048
IMAGE_SUFFIXES = tuple(sorted(RASTER_SUFFIXES))


def have_rasterio() -> bool:
    try:
        import rasterio  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class ImageDoc:
    """An opened image: where it is, what the model will read from it, and the preview on screen."""

    path: Path
    width: int
    height: int
    bands: int  # bands a model reads (alpha is the validity mask, not a band)
    dtype: str
    preview: np.ndarray  # (h, w, 3) uint8 for display, downsampled
    crs: Any = None
    transform: Any = None
    nodata: Any = None

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and self.transform is not None

    @property
    def preview_scale(self) -> float:
        """Full-resolution pixels per preview pixel (>= 1)."""
        return self.width / self.preview.shape[1]

    def ground_area_m2(self) -> float | None:
        """Ground area of the whole image in m², with the same earth model as the area reports."""
        if not self.georeferenced:
            return None
        from terraseg.predict.ground import GroundArea

        ground = GroundArea(self.transform, self.crs, self.width, self.height)
        if not ground.georeferenced:
            return None
        return ground.mean_pixel_m2() * self.width * self.height  # the one earth model of the area reports


def open_image(path: str | Path, max_side: int = PREVIEW_MAX_SIDE) -> ImageDoc:
    """Open ``path`` for viewing; a DataError with one sentence when it cannot be read."""
    from terraseg.data.source import open_source, uses_pillow
    from terraseg.predict.outputs import display_image

    path = Path(path)
    if not path.is_file():
        raise DataError("image file not found", path)
    if not uses_pillow(path) and not have_rasterio():
        raise DataError("reading this format needs rasterio, which this installation lacks; "
                        "open a JPG or PNG, or use the build with rasterio", path)
    with open_source(path) as src:
        pixels, valid = src.preview(max_side)
        rgb = display_image(pixels, valid)
        if valid is not None:
            rgb = np.where(valid[:, :, None], rgb, np.uint8(0))  # nodata shows black
        transform = src.transform if src.georeferenced else None
        return ImageDoc(path=path, width=src.width, height=src.height, bands=src.count, dtype=str(src.dtype),
                        preview=rgb, crs=src.crs if transform is not None else None, transform=transform,
                        nodata=src.nodata)
