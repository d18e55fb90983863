"""Accuracy and error-adjusted class areas of a class map, from labelled sample points or a reference raster.

:func:`estimate_areas` is what ``terraseg assess areas`` runs:

* **points** (GPKG, GeoJSON or CSV, see :mod:`terraseg.assess.points`): the map class under each
  point is read from the map, its reference label is matched to the map's classes (by name, case
  insensitive, or by class index), and the stratified estimators of Olofsson et al. (2014)
  (:func:`terraseg.assess.stats.stratified_estimate`) give the error matrix in area proportions,
  overall / user's / producer's accuracy and error-adjusted areas, each with a 95 % confidence
  interval. The strata are the map classes; their areas are ground areas by the project's one rule
  (planar for projected CRSs of constant scale, geodesic otherwise).
* **a full-coverage reference raster** (same grid, or resampled onto it with nearest neighbour):
  the census figures (:func:`terraseg.assess.stats.census_estimate`), exact, without intervals.

Points that cannot be used are skipped and counted, each kind in one warning: outside the map, on
nodata, without a reference label, with a label that names no class. A stratum left with fewer
than 2 points is an error (its variance cannot be estimated).
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from terraseg.errors import DataError

CITATION = ("Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A. (2014). "
            "Good practices for estimating area and assessing accuracy of land change. Remote Sensing of "
            "Environment 148, 42-57. doi:10.1016/j.rse.2014.02.015")
RASTER_SUFFIXES = {".tif", ".tiff", ".vrt", ".img", ".jp2"}


def _num(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _examples(counter: Counter, limit: int = 5) -> str:
    items = [f"{k!r}" + (f" x{v}" if v > 1 else "") for k, v in counter.most_common(limit)]
    more = len(counter) - limit
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")


def match_labels(labels, class_names) -> tuple[np.ndarray, Counter, int]:
    """Reference labels -> class indices (-1 where unusable): names (case-insensitive) first, then indices.

    Returns the indices, the unknown labels counted, and the number of empty labels.
    """
    lookup = {str(n).strip().lower(): i for i, n in enumerate(class_names)}
    out = np.full(len(labels), -1, np.int64)
    unknown: Counter = Counter()
    empty = 0
    for i, label in enumerate(labels):
        if label is None or not str(label).strip():
            empty += 1
            continue
        key = str(label).strip().lower()
        if key in lookup:
            out[i] = lookup[key]
            continue
        try:
            value = float(key)
        except ValueError:
            value = None
        if value is not None and value.is_integer() and 0 <= value < len(class_names):
            out[i] = int(value)
        else:
            unknown[str(label)] += 1
    return out, unknown, empty


def sample_map(cmap, x, y, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Map class under each point (-1 where none) and whether the point lies inside the map.

    Points are grouped by strip, so only the strips holding points are read.
    """
    from terraseg.assess.classmap import STRIP_ROWS, opened, read_strip

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if cmap.transform is None:
        cols, rows = np.floor(x), np.floor(y)
    else:
        inv = ~cmap.transform
        cols = np.floor(inv.a * x + inv.b * y + inv.c)
        rows = np.floor(inv.d * x + inv.e * y + inv.f)
    with np.errstate(invalid="ignore"):
        inside = np.isfinite(cols) & np.isfinite(rows) & (cols >= 0) & (rows >= 0) & (cols < cmap.width) \
            & (rows < cmap.height)
    classes = np.full(len(x), -1, np.int64)
    r = np.where(inside, rows, 0).astype(np.int64)
    c = np.where(inside, cols, 0).astype(np.int64)
    strip_of = r // STRIP_ROWS
    with opened(cmap.path) as (ds, _):
        for s in np.unique(strip_of[inside]):
            top = int(s) * STRIP_ROWS
            rows_n = min(STRIP_ROWS, cmap.height - top)
            values, _ = read_strip(ds, top, rows_n, cmap.nodata, num_classes)
            sel = inside & (strip_of == s)
            v = values[r[sel] - top, c[sel]].astype(np.int64)
            classes[sel] = np.where(v < num_classes, v, -1)
    return classes, inside


def _class_rows(names, keep, areas_m2, pixels, est, census: bool, georef: bool) -> list[dict]:
    rows = []
    for i in np.flatnonzero(keep):
        row = {"name": names[i], "index": int(i), "map_pixels": int(pixels[i]),
               "map_area_m2": _num(areas_m2[i]) if georef else None,
               "map_area_ha": _num(areas_m2[i] / 1e4) if georef else None}
        area = est["area"][i]
        if georef:
            row.update(area_m2=_num(area), area_ha=_num(area / 1e4))
        else:
            row.update(area_pixels=_num(area))
        if not census:
            half = 1.96 * est["area_se"][i]
            if georef:
                row.update(area_ci95_m2=_num(half), area_ci95_ha=_num(half / 1e4))
            else:
                row.update(area_ci95_pixels=_num(half))
            row["sample_points"] = int(est["sample_points"][i])
            row["reference_points"] = int(est["counts"][:, i].sum())
        row["area_proportion"] = _num(est["area_proportion"][i])
        row["users_accuracy"] = _num(est["users_accuracy"][i])
        if not census:
            row["users_accuracy_ci95"] = _num(1.96 * est["users_accuracy_se"][i])
        row["producers_accuracy"] = _num(est["producers_accuracy"][i])
        if not census:
            row["producers_accuracy_ci95"] = _num(1.96 * est["producers_accuracy_se"][i])
        rows.append(row)
    return rows


def _census_matrix(cmap, reference: Path, k: int, progress: bool):
    """Area (m², pixels without a CRS) of every (map class, reference class) pair, streamed."""
    from terraseg._progress import track
    from terraseg.assess.classmap import OTHER, open_class_map, opened, read_strip, strips
    from terraseg.predict.ground import GroundArea

    ref = open_class_map(reference)
    remap = np.arange(256, dtype=np.int64)
    if ref.names is not None:
        lookup = {n.strip().lower(): i for i, n in enumerate(cmap.names)}
        missing = [n for n in ref.names if n.strip().lower() not in lookup]
        if missing:
            raise DataError(f"has classes the map does not have: {', '.join(missing)} "
                            f"(map classes: {', '.join(cmap.names)})", reference)
        remap[:len(ref.names)] = [lookup[n.strip().lower()] for n in ref.names]
    ref_k = len(ref.names) if ref.names is not None else k
    ground = GroundArea(cmap.transform, cmap.crs, cmap.width, cmap.height)
    area = np.zeros(k * k, np.float64)
    pixels = np.zeros(k * k, np.int64)
    parts = list(strips(cmap.height))
    with opened(cmap.path) as (mds, _), opened(reference, like=cmap) as (rds, resampled):
        for top, rows in (track(parts, description="comparing") if progress else parts):
            m, _ = read_strip(mds, top, rows, cmap.nodata, k)
            r, _ = read_strip(rds, top, rows, rds.nodata if resampled else ref.nodata, ref_k)
            both = (m != OTHER) & (r != OTHER)
            code = m.astype(np.int64) * k + remap[r]
            counts = np.bincount(code[both], minlength=k * k)
            pixels += counts
            if ground.method == "geodesic":
                weights = np.broadcast_to(ground.row_areas(top, rows)[:, None], m.shape)[both]
                area += np.bincount(code[both], weights=weights, minlength=k * k)
            elif ground.method == "planar":
                area += counts * ground.pixel_m2
            else:
                area += counts
    return area.reshape(k, k), pixels.reshape(k, k), resampled, ground.method


def estimate_areas(map_path: str | Path, reference: str | Path, out_dir: str | Path | None = None, *,
                   reference_field: str = "reference", x_field: str = "x", y_field: str = "y",
                   progress: bool = False) -> dict:
    """Accuracy and error-adjusted areas of the class map ``map_path``.

    Args:
        map_path: the class map whose classes are the strata of the sample.
        reference: labelled points (``.gpkg``, ``.geojson``, ``.csv``) or a full-coverage reference
            raster (``.tif``; census figures, no intervals).
        out_dir: when given, ``assessment.json``, ``assessment.csv``, ``error_matrix.csv`` and
            ``assessment.md`` are written there (:mod:`terraseg.assess.report`).
        reference_field: the field / column holding the reference labels (class names or indices).
        x_field, y_field: coordinate columns of a CSV (in the map's CRS).

    Returns:
        The assessment (the content of ``assessment.json``): ``overall_accuracy`` and
        ``overall_accuracy_ci95``, the ``error_matrix`` in ``counts`` and estimated area
        ``proportions``, and per class (``classes``) ``map_area_m2``, ``area_m2``, ``area_ci95_m2``
        (half-width), ``users_accuracy(_ci95)`` and ``producers_accuracy(_ci95)``.
    """
    from terraseg.assess.classmap import class_areas, open_class_map
    from terraseg.assess.stats import census_estimate, stratified_estimate

    reference = Path(reference)
    cmap = open_class_map(map_path)
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        warnings.warn(text, stacklevel=3)

    census = reference.suffix.lower() in RASTER_SUFFIXES
    if census:
        areas = class_areas(cmap, progress=progress) if cmap.names is None else None
        if areas is not None:
            cmap.names = areas.names
        names = cmap.names
        k = len(names)
        matrix, pixel_matrix, resampled, method = _census_matrix(cmap, reference, k, progress)
        if resampled:
            note(f"{reference.name} is on another grid than the map; it was resampled onto the map's grid "
                 "(nearest neighbour)")
        if matrix.sum() <= 0:
            raise DataError("shares no classified pixel with the map", reference)
        est = census_estimate(matrix)
        georef = method is not None
        map_m2, map_px = matrix.sum(axis=1), pixel_matrix.sum(axis=1)
        keep = (map_px > 0) | (pixel_matrix.sum(axis=0) > 0)
        result = {"method": "census", "map": str(map_path), "reference_raster": str(reference),
                  "resampled": bool(resampled), "pixels_compared": int(pixel_matrix.sum())}
        counts_out = pixel_matrix
    else:
        from terraseg.assess.points import read_points

        areas = class_areas(cmap, progress=progress)
        names = areas.names
        cmap.names = names
        k = len(names)
        georef = areas.m2 is not None
        method = areas.area_method
        points = read_points(reference, reference_field, cmap.crs, x_field=x_field, y_field=y_field)
        if points.crs_note:
            note(f"{reference.name}: {points.crs_note}")
        if points.skipped_no_geometry:
            note(f"{reference.name}: {points.skipped_no_geometry:,} feature(s) without a geometry skipped")
        if len(points) == 0:
            raise DataError("holds no point", reference)
        map_class, inside = sample_map(cmap, points.x, points.y, k)
        ref_class, _, _ = match_labels(points.labels, names)
        outside = int((~inside).sum())
        on_nodata = int((inside & (map_class < 0)).sum())
        if outside:
            note(f"{reference.name}: {outside:,} point(s) lie outside the map and were skipped")
        if on_nodata:
            note(f"{reference.name}: {on_nodata:,} point(s) lie on nodata (no map class) and were skipped")
        usable = map_class >= 0
        no_label = np.array([lab is None for lab in points.labels], bool)
        n_empty = int((usable & no_label).sum())
        n_unknown = int((usable & ~no_label & (ref_class < 0)).sum())
        if n_empty:
            note(f"{reference.name}: {n_empty:,} point(s) have an empty {reference_field!r} and were skipped "
                 "(label them, or remove them from the file)")
        if n_unknown:
            bad = Counter(lab for lab, u, rc in zip(points.labels, usable, ref_class) if u and lab is not None
                          and rc < 0)
            note(f"{reference.name}: {n_unknown:,} point(s) have a {reference_field!r} that names no "
                 f"class ({_examples(bad)}) and were skipped; classes: {', '.join(names)}")
        ok = usable & (ref_class >= 0)
        counts = np.zeros((k, k), np.int64)
        np.add.at(counts, (map_class[ok], ref_class[ok]), 1)
        size = areas.m2 if georef else areas.pixels.astype(np.float64)
        few = [(names[i], int(counts[i].sum())) for i in range(k) if size[i] > 0 and counts[i].sum() < 2]
        if few:
            listed = ", ".join(f"{nm!r} has {c}" for nm, c in few)
            raise DataError(f"each map class needs at least 2 labelled points inside it (50 or more are advised) "
                            f"for the stratified estimators, but {listed}", reference)
        est = stratified_estimate(counts, size)
        map_m2, map_px = (areas.m2 if georef else size), areas.pixels
        keep = (areas.pixels > 0) | (counts.sum(axis=0) > 0)
        result = {"method": "stratified", "map": str(map_path), "points": str(reference),
                  "reference_field": reference_field, "points_read": len(points), "points_used": int(ok.sum()),
                  "points_skipped": {"outside_map": outside, "on_nodata": on_nodata, "empty_reference": n_empty,
                                     "unknown_label": n_unknown, "no_geometry": points.skipped_no_geometry}}
        if areas.unnamed_pixels:
            note(f"{Path(map_path).name}: {areas.unnamed_pixels:,} pixel(s) hold values without a class name and "
                 "were left out of the strata")
        counts_out = counts
    idx = np.flatnonzero(keep)
    total = float(est["total_area"])
    result.update({
        "crs": cmap.crs.to_string() if cmap.crs is not None else None,
        "area_method": method,
        "area_unit": "m2" if georef else "pixels",
        "total_area_m2": total if georef else None,
        "total_area_ha": total / 1e4 if georef else None,
        "overall_accuracy": _num(est["overall_accuracy"]),
        "overall_accuracy_ci95": None if census else _num(1.96 * est["overall_accuracy_se"]),
        "error_matrix": {
            "rows": "map class", "columns": "reference class",
            "classes": [names[i] for i in idx],
            "counts": [[int(v) for v in row] for row in np.asarray(counts_out)[np.ix_(idx, idx)]],
            "proportions": [[float(v) for v in row] for row in est["proportions"][np.ix_(idx, idx)]],
        },
        "classes": _class_rows(names, keep, map_m2, map_px, est, census, georef),
        "notes": notes,
        "citation": CITATION,
    })
    if out_dir is not None:
        from terraseg.assess.report import write_assessment

        write_assessment(result, out_dir)
    return result
