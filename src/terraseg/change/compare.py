"""Change between two class maps: transition matrix, gains and losses, and a change raster.

:func:`compare_maps` streams both maps strip by strip on map A's grid (map B is read through a
``WarpedVRT`` with nearest-neighbour resampling when its grid differs, and the report says so):

* the **transition matrix** in pixels and in ground m² / ha (the project's one ground-area rule,
  :class:`terraseg.predict.ground.GroundArea`: planar for projected CRSs of constant scale,
  geodesic otherwise), rows = class at date A, columns = class at date B;
* per class: area at A and at B, **gain** (area becoming the class), **loss** (area leaving it),
  **net change** (gain - loss) and persistence;
* the **change raster** ``change.tif``: one value per transition, ``a * K + b`` for class ``a`` at
  A and ``b`` at B (K classes), nodata 255 where either map has none. It is written like terraseg's
  class maps (:mod:`terraseg.predict.outputs`): a Cloud Optimized GeoTIFF with a colour table
  (changed pixels in the colour of their new class, persistent ones pale), the category names
  (``vegetation → building``) as ``CLASSES`` tags and in ``change.tif.aux.xml``, and a QGIS
  ``change.qml``. So a change map is read back, sampled and assessed with ``terraseg assess`` like
  any class map;
* optionally polygons of the changed regions (``vector="gpkg"`` or ``"geojson"``), through the
  project's vectorizer (:func:`terraseg.predict.vectorize.vectorize`); this step holds the change
  raster in memory (1 byte per pixel), the rest streams.

Class names are matched between the maps by name (case-insensitive); classes only one map has are
added to the list. At most 15 classes (K² transitions must fit the 255 values of a byte).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from terraseg.errors import DataError

ARROW = "→"
#: How much of a persistent class's colour is kept (the rest is white) in the change raster.
STABLE_SHADE = 0.35


def union_classes(names_a, colors_a, names_b, colors_b):
    """The class list of a comparison (A's classes, then B's that A lacks), with the index map of B into it."""
    names, colors = list(names_a), [tuple(c) for c in colors_a]
    lookup = {n.strip().lower(): i for i, n in enumerate(names)}
    b_to_union = []
    for n, c in zip(names_b, colors_b):
        key = n.strip().lower()
        if key not in lookup:
            lookup[key] = len(names)
            names.append(n)
            colors.append(tuple(c))
        b_to_union.append(lookup[key])
    return names, colors, np.array(b_to_union, np.int64)


def transition_names(names) -> list[str]:
    """Category names of the change raster: value ``a * K + b`` is ``"<a> → <b>"``."""
    return [f"{a} {ARROW} {b}" for a in names for b in names]


def transition_colors(colors) -> list[tuple[int, int, int]]:
    """Changed pixels take their new class's colour; persistent pixels a pale shade of theirs."""
    out = []
    for i, ca in enumerate(colors):
        for j, cb in enumerate(colors):
            if i == j:
                out.append(tuple(int(round(255 - (255 - v) * STABLE_SHADE)) for v in ca[:3]))
            else:
                out.append(tuple(int(v) for v in cb[:3]))
    return out


def _lut(k_src: int, target) -> np.ndarray:
    """uint8 lookup: source class index -> union index, 255 -> 255."""
    lut = np.full(256, 255, np.uint8)
    lut[:k_src] = np.asarray(target, np.int64)[:k_src]
    return lut


def _resolve(cmap):
    from terraseg.assess.classmap import class_areas
    from terraseg.data.palette import default_colors

    if cmap.names is None:
        areas = class_areas(cmap)
        cmap.names, cmap.colors = areas.names, areas.colors
    if cmap.colors is None or len(cmap.colors) != len(cmap.names):
        cmap.colors = default_colors(len(cmap.names))
    return cmap


def compare_maps(map_a: str | Path, map_b: str | Path, out_dir: str | Path, *, vector: str | None = None,
                 min_area: float = 0.0, progress: bool = False) -> dict:
    """Compare the class maps ``map_a`` (earlier) and ``map_b`` (later) and write the change products.

    Args:
        map_a, map_b: class maps (terraseg class rasters, or any one-band GeoTIFF of class indices).
        out_dir: receives ``change.tif`` (+ ``.tif.aux.xml``, ``.qml``), ``change.json``,
            ``transitions.csv``, ``classes.csv``, ``change.md`` and, with ``vector``, ``change.gpkg``
            or ``change.geojson``.
        vector: ``"gpkg"`` or ``"geojson"`` for polygons of the changed regions.
        min_area: with ``vector``, drop / merge change regions smaller than this (m² of ground).

    Returns:
        The report (the content of ``change.json``): ``classes``, the ``transitions`` matrix in
        ``pixels``, ``m2`` and ``ha``, per class gains / losses / net change, and the output paths.
    """
    import rasterio

    from terraseg._io import atomic_path
    from terraseg._progress import track
    from terraseg.assess.classmap import OTHER, open_class_map, opened, read_strip, strips
    from terraseg.change.report import write_change_report
    from terraseg.data.raster import geotiff_profile
    from terraseg.data.source import gdal_env
    from terraseg.predict.ground import GroundArea
    from terraseg.predict.outputs import (RowWriter, class_colormap, tag_classes, to_cog, write_category_names,
                                          write_qml)

    if vector is not None and vector not in ("gpkg", "geojson"):
        from terraseg.errors import ConfigError

        raise ConfigError(f"unknown vector format {vector!r}; choose gpkg or geojson")
    a = _resolve(open_class_map(map_a))
    b = _resolve(open_class_map(map_b))
    names, colors, b_to_union = union_classes(a.names, a.colors, b.names, b.colors)
    k = len(names)
    if k * k > OTHER:
        raise DataError(f"the two maps have {k} classes between them; a change raster holds one value per "
                        f"transition, so at most 15 classes ({k}² = {k * k} transitions do not fit 255 values)",
                        map_b)
    lut_a = _lut(len(a.names), np.arange(len(a.names)))
    lut_b = _lut(len(b.names), b_to_union)
    ground = GroundArea(a.transform, a.crs, a.width, a.height)
    pixels = np.zeros(k * k, np.int64)
    m2 = np.zeros(k * k, np.float64)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    raster = out / "change.tif"
    cat_names, cat_colors = transition_names(names), transition_colors(colors)
    parts = list(strips(a.height))
    profile = geotiff_profile(a.width, a.height, 1, "uint8", a.crs, a.transform, nodata=OTHER)
    with atomic_path(raster) as tmp:
        with opened(map_a) as (ads, _), opened(map_b, like=a) as (bds, resampled), gdal_env():
            b_nodata = bds.nodata if resampled else b.nodata
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write_colormap(1, class_colormap(cat_colors))
                tag_classes(dst, cat_names, cat_colors)
                writer = RowWriter(dst)
                for top, rows in (track(parts, description="comparing") if progress else parts):
                    ca, _ = read_strip(ads, top, rows, a.nodata, len(a.names))
                    cb, _ = read_strip(bds, top, rows, b_nodata, len(b.names))
                    ua, ub = lut_a[ca], lut_b[cb]
                    valid = (ua != OTHER) & (ub != OTHER)
                    code = np.where(valid, ua.astype(np.uint16) * k + ub, OTHER).astype(np.uint8)
                    writer.add(code)
                    counts = np.bincount(code.reshape(-1), minlength=256)[:k * k]
                    pixels += counts
                    if ground.method == "planar":
                        m2 += counts * ground.pixel_m2
                    elif ground.method == "geodesic":
                        weights = np.broadcast_to(ground.row_areas(top, rows)[:, None], code.shape)
                        m2 += np.bincount(code.reshape(-1), weights=weights.reshape(-1), minlength=256)[:k * k]
                writer.flush()
        cog = tmp.with_name(tmp.stem + ".cog.tif")
        try:
            to_cog(tmp, cog, resampling="NEAREST")
            os.replace(cog, tmp)
        finally:
            cog.unlink(missing_ok=True)
    write_category_names(out / "change.tif.aux.xml", cat_names, cat_colors)
    write_qml(out / "change.qml", cat_names, cat_colors)
    georef = ground.method is not None
    px = pixels.reshape(k, k)
    area = m2.reshape(k, k) if georef else px.astype(np.float64)
    report = {
        "map_a": str(map_a), "map_b": str(map_b), "resampled": bool(resampled),
        "resampling": "nearest neighbour (WarpedVRT) onto map A's grid" if resampled else None,
        "width": a.width, "height": a.height,
        "crs": a.crs.to_string() if a.crs is not None else None,
        "area_method": ground.method, "area_unit": "m2" if georef else "pixels",
        "classes": names,
        "transitions": {"rows": "class at date A", "columns": "class at date B",
                        "pixels": px.tolist(),
                        "m2": area.tolist() if georef else None,
                        "ha": (area / 1e4).tolist() if georef else None},
        "compared_pixels": int(px.sum()),
        "compared_m2": float(area.sum()) if georef else None,
        "changed_pixels": int(px.sum() - np.trace(px)),
        "changed_m2": float(area.sum() - np.trace(area)) if georef else None,
        "per_class": [],
        "outputs": {"change_raster": str(raster), "aux": str(out / "change.tif.aux.xml"),
                    "qml": str(out / "change.qml")},
    }
    for i, name in enumerate(names):
        at_a, at_b, stay = area[i].sum(), area[:, i].sum(), area[i, i]
        gain, loss = at_b - stay, at_a - stay
        row = {"name": name, "index": i, "pixels_a": int(px[i].sum()), "pixels_b": int(px[:, i].sum()),
               "gain_pixels": int(px[:, i].sum() - px[i, i]), "loss_pixels": int(px[i].sum() - px[i, i])}
        if georef:
            row.update(area_a_m2=float(at_a), area_b_m2=float(at_b), persistence_m2=float(stay),
                       gain_m2=float(gain), loss_m2=float(loss), net_m2=float(gain - loss),
                       area_a_ha=float(at_a / 1e4), area_b_ha=float(at_b / 1e4), gain_ha=float(gain / 1e4),
                       loss_ha=float(loss / 1e4), net_ha=float((gain - loss) / 1e4))
        row["net_percent_of_a"] = float(100 * (gain - loss) / at_a) if at_a > 0 else None
        report["per_class"].append(row)
    if vector is not None:
        from terraseg.predict.vectorize import SUFFIXES, vectorize

        with rasterio.open(raster) as src:
            codes = src.read(1)
        stable = np.arange(k) * k + np.arange(k)
        codes[np.isin(codes, stable)] = OTHER  # polygons of change only
        path = out / f"change{SUFFIXES[vector]}"
        count = vectorize(codes, path, cat_names, transform=a.transform, crs=a.crs, fmt=vector, min_area=min_area)
        del codes
        report["outputs"]["polygons"] = str(path)
        report["change_polygons"] = count
    write_change_report(report, out)
    return report
