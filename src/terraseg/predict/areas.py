"""Class-area report: pixels, share of area and, for georeferenced rasters, m² and hectares.

Areas are accumulated strip by strip while the prediction streams (:class:`AreaAccumulator`), so a
report never needs the whole class raster in memory. Projected CRSs use the pixel size in metres
(CRS units converted with the CRS's linear unit factor); geographic CRSs (degrees) use the pixel's
area on a sphere of the Earth's mean radius at each row's latitude. Rasters without a CRS get pixel
counts and percentages only.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from terraseg._io import atomic_path, write_json_atomic

EARTH_RADIUS_M = 6_371_008.8
COLUMNS = ("class_id", "class", "pixels", "percent", "m2", "ha")


def _metres_per_unit(crs) -> float | None:
    try:
        return float(crs.linear_units_factor[1])
    except Exception:  # CRS without linear units
        return None


class AreaAccumulator:
    """Counts pixels (and m² when possible) per class over strips of a class raster."""

    def __init__(self, num_classes: int, transform=None, crs=None, ignore_index: int = 255):
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.pixels = np.zeros(self.num_classes, np.int64)
        self.other = 0  # nodata / ignore pixels
        self.transform = transform
        self.crs = crs
        self.m2 = None
        self.pixel_area_m2: float | None = None
        self._geographic = False
        if crs is not None and transform is not None:
            if getattr(crs, "is_geographic", False):
                self._geographic = True
                self.m2 = np.zeros(self.num_classes, np.float64)
            else:
                factor = _metres_per_unit(crs)
                if factor is not None:
                    det = abs(transform.a * transform.e - transform.b * transform.d)
                    self.pixel_area_m2 = det * factor * factor
                    self.m2 = np.zeros(self.num_classes, np.float64)

    @property
    def georeferenced(self) -> bool:
        return self.m2 is not None

    def _row_areas(self, top: int, rows: int) -> np.ndarray:
        """m² of one pixel in each row (geographic CRS): cell size in degrees on the sphere."""
        t = self.transform
        r = np.arange(top, top + rows, dtype=np.float64) + 0.5
        lat = t.f + t.e * r  # north-up rasters; the row's centre latitude
        deg = math.pi / 180.0
        return abs(t.a * t.e) * (EARTH_RADIUS_M * deg) ** 2 * np.cos(np.clip(lat, -90, 90) * deg)

    def add(self, top: int, classes: np.ndarray) -> None:
        """Add a strip of class indices whose first row is ``top`` of the scene."""
        flat = classes.reshape(-1)
        counts = np.bincount(flat, minlength=256)
        self.pixels += counts[:self.num_classes]
        self.other += int(counts[self.num_classes:].sum())
        if self.m2 is None:
            return
        if self._geographic:
            w = np.repeat(self._row_areas(top, classes.shape[0]), classes.shape[1])
            self.m2 += np.bincount(flat, weights=w, minlength=256)[:self.num_classes]
        else:
            self.m2 += counts[:self.num_classes] * self.pixel_area_m2

    def report(self, class_names, **info) -> dict:
        total = int(self.pixels.sum())
        rows = []
        for i, name in enumerate(class_names):
            px = int(self.pixels[i])
            row = {"class_id": i, "class": name, "pixels": px,
                   "percent": 100.0 * px / total if total else 0.0, "m2": None, "ha": None}
            if self.m2 is not None:
                row["m2"] = float(self.m2[i])
                row["ha"] = float(self.m2[i]) / 10_000.0
            rows.append(row)
        return {
            **info,
            "georeferenced": self.georeferenced,
            "crs": self.crs.to_string() if self.crs is not None else None,
            "pixel_area_m2": self.pixel_area_m2,
            "classified_pixels": total,
            "nodata_pixels": self.other,
            "total_m2": float(self.m2.sum()) if self.m2 is not None else None,
            "classes": rows,
        }


def area_report(classes: np.ndarray, class_names, transform=None, crs=None, **info) -> dict:
    """Area report for an in-memory class raster ``(H, W)`` (indices >= K count as nodata)."""
    acc = AreaAccumulator(len(class_names), transform=transform, crs=crs)
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
