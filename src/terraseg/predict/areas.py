"""Class-area report: pixels, share of area and, for georeferenced rasters, m² and hectares.

Areas are accumulated strip by strip while the prediction streams (:class:`AreaAccumulator`), so a
report never needs the whole class raster in memory. Ground area per pixel comes from
:mod:`terraseg.predict.ground` (planar for projected CRSs of constant scale, geodesic on the CRS's
ellipsoid for geographic CRSs and projections whose scale varies over the scene, such as Web
Mercator). Shares of area are shares of ground area when the raster is georeferenced, of pixels
otherwise. Rasters without a CRS get pixel counts and percentages only.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from terraseg._io import atomic_path, write_json_atomic

COLUMNS = ("class_id", "class", "pixels", "percent", "m2", "ha")


class AreaAccumulator:
    """Counts pixels (and m² when possible) per class over strips of a class raster.

    ``width`` / ``height`` (the scene's size) let the ground-area rule look at the whole scene;
    without them the first strip's width is used for both.
    """

    def __init__(self, num_classes: int, transform=None, crs=None, ignore_index: int = 255,
                 width: int | None = None, height: int | None = None):
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.pixels = np.zeros(self.num_classes, np.int64)
        self.other = 0  # nodata / ignore pixels
        self.transform = transform
        self.crs = crs
        self.size = (width, height)
        self.ground = None
        georef = crs is not None and transform is not None
        self.m2 = np.zeros(self.num_classes, np.float64) if georef else None
        if georef and width is not None and height is not None:
            self._ground(width, height)

    def _ground(self, width: int, height: int):
        from terraseg.predict.ground import GroundArea

        if self.ground is None:
            self.ground = GroundArea(self.transform, self.crs, width, height)
            if not self.ground.georeferenced:
                self.m2 = None
        return self.ground

    @property
    def georeferenced(self) -> bool:
        return self.m2 is not None

    @property
    def pixel_area_m2(self) -> float | None:
        """The constant pixel area (planar CRSs); ``None`` when it varies (geodesic) or is unknown."""
        return self.ground.pixel_m2 if self.ground is not None else None

    def add(self, top: int, classes: np.ndarray) -> None:
        """Add a strip of class indices whose first row is ``top`` of the scene."""
        flat = classes.reshape(-1)
        counts = np.bincount(flat, minlength=256)
        self.pixels += counts[:self.num_classes]
        self.other += int(counts[self.num_classes:].sum())
        if self.m2 is None:
            return
        w = classes.shape[1]
        ground = self._ground(self.size[0] or w, self.size[1] or w)
        if ground.method == "planar":
            self.m2 += counts[:self.num_classes] * ground.pixel_m2
        elif ground.method == "geodesic":
            weights = np.repeat(ground.row_areas(top, classes.shape[0]), w)
            self.m2 += np.bincount(flat, weights=weights, minlength=256)[:self.num_classes]

    def report(self, class_names, **info) -> dict:
        total = int(self.pixels.sum())
        # share of ground area when known (pixels differ in area in geographic / Mercator scenes)
        share = self.m2 if self.m2 is not None else self.pixels.astype(np.float64)
        share_total = float(share.sum())
        rows = []
        for i, name in enumerate(class_names):
            px = int(self.pixels[i])
            row = {"class_id": i, "class": name, "pixels": px,
                   "percent": 100.0 * float(share[i]) / share_total if share_total > 0 else 0.0,
                   "m2": None, "ha": None}
            if self.m2 is not None:
                row["m2"] = float(self.m2[i])
                row["ha"] = float(self.m2[i]) / 10_000.0
            rows.append(row)
        return {
            **info,
            "georeferenced": self.georeferenced,
            "crs": self.crs.to_string() if self.crs is not None else None,
            "pixel_area_m2": self.pixel_area_m2,
            "area_method": self.ground.method if self.ground is not None and self.m2 is not None else None,
            "classified_pixels": total,
            "nodata_pixels": self.other,
            "total_m2": float(self.m2.sum()) if self.m2 is not None else None,
            "classes": rows,
        }


def area_report(classes: np.ndarray, class_names, transform=None, crs=None, **info) -> dict:
    """Area report for an in-memory class raster ``(H, W)`` (indices >= K count as nodata)."""
    acc = AreaAccumulator(len(class_names), transform=transform, crs=crs,
                          width=int(classes.shape[1]), height=int(classes.shape[0]))
    acc.add(0, np.asarray(classes, np.uint8))
    return acc.report(class_names, width=int(classes.shape[1]), height=int(classes.shape[0]), **info)


def report_csv(report: dict) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in report["classes"]:
        writer.writerow([row["class_id"], row["class"], row["pixels"], f"{row['percent']:.4f}",
                         "" if row["m2"] is None else f"{row['m2']:.2f}",
                         "" if row["ha"] is None else f"{row['ha']:.4f}"])
    return buf.getvalue()


def write_area_report(report: dict, csv_path: str | Path | None = None, json_path: str | Path | None = None) -> None:
    if csv_path is not None:
        with atomic_path(csv_path) as tmp:
            tmp.write_text(report_csv(report), encoding="utf-8")
    if json_path is not None:
        write_json_atomic(json_path, report)
