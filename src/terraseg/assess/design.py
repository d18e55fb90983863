"""Sample design: a stratified random sample of pixels, the strata being the map's classes.

:func:`design_sample` follows the good practice of Olofsson et al. (2014, section 5.1.4):

1. The map is streamed once to count every class's pixels and ground area (the project's one
   ground-area rule).
2. The total sample size is given (``n``) or follows from a target standard error of overall
   accuracy and the user's accuracy expected of each class (eq. 13, :func:`terraseg.assess.stats.sample_size`).
3. The points are allocated proportionally to area with a minimum per class
   (:func:`terraseg.assess.stats.allocate`), so rare classes (change!) get enough points for their
   user's accuracy.
4. In each stratum ``n_h`` distinct pixels are drawn with equal probability: ``n_h`` ranks out of
   the stratum's ``N_h`` pixels in raster order (numpy ``Generator.choice`` without replacement,
   seeded), then a second streamed pass finds the pixels of those ranks. Memory is a strip plus
   the chosen ranks, whatever the map's size; the same seed gives the same points.

Points lie at pixel centres, in the map's CRS, in random order (so a labeller meets the strata
mixed), with ``id``, ``map_class`` and an empty ``reference`` (see :mod:`terraseg.assess.points`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from terraseg.errors import ConfigError, DataError

DEFAULT_TARGET_SE = 0.01
DEFAULT_EXPECTED_UA = 0.8
DEFAULT_MIN_PER_CLASS = 50


def parse_expected_ua(items, class_names) -> dict[str, float]:
    """``["forest=0.9", "water=0.95"]`` -> ``{name: ua}`` (names as in the map, case-insensitive)."""
    out = {}
    lookup = {n.lower(): n for n in class_names}
    for item in items or []:
        name, sep, value = str(item).rpartition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--expected-ua {item!r}: write CLASS=VALUE, e.g. forest=0.85")
        key = lookup.get(name.strip().lower())
        if key is None:
            raise ConfigError(f"--expected-ua {item!r}: the map has no class {name.strip()!r} "
                              f"(classes: {', '.join(class_names)})")
        try:
            ua = float(value)
        except ValueError:
            raise ConfigError(f"--expected-ua {item!r}: {value!r} is not a number") from None
        if not 0.0 <= ua <= 1.0:
            raise ConfigError(f"--expected-ua {item!r}: a user's accuracy lies between 0 and 1")
        out[key] = ua
    return out


def _draw(cmap, k: int, ranks: list[np.ndarray], progress: bool):
    """Second pass: (rows, cols, classes) of the pixels whose rank in their class is in ``ranks``."""
    from terraseg._progress import track
    from terraseg.assess.classmap import opened, read_strip, strips

    seen = np.zeros(k, np.int64)
    pos = np.zeros(k, np.int64)  # next unread entry of ranks[h]
    rows_out, cols_out, cls_out = [], [], []
    parts = list(strips(cmap.height))
    with opened(cmap.path) as (ds, _):
        for top, rows in (track(parts, description="drawing points") if progress else parts):
            classes, _ = read_strip(ds, top, rows, cmap.nodata, k)
            flat = classes.reshape(-1)
            counts = np.bincount(flat, minlength=256)[:k]
            for h in np.flatnonzero(counts):
                r = ranks[h]
                end = pos[h] + np.searchsorted(r[pos[h]:], seen[h] + counts[h])
                if end > pos[h]:
                    where = np.flatnonzero(flat == h)[r[pos[h]:end] - seen[h]]
                    rows_out.append(top + where // cmap.width)
                    cols_out.append(where % cmap.width)
                    cls_out.append(np.full(len(where), h, np.int64))
                    pos[h] = end
                seen[h] += counts[h]
    if not rows_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows_out), np.concatenate(cols_out), np.concatenate(cls_out)


def design_sample(map_path: str | Path, out_path: str | Path, *, n: int | None = None,
                  target_se: float | None = None, expected_ua: dict[str, float] | None = None,
                  default_ua: float = DEFAULT_EXPECTED_UA, min_per_class: int = DEFAULT_MIN_PER_CLASS,
                  seed: int = 0, progress: bool = False) -> dict:
    """Draw a stratified random sample of the class map ``map_path`` and write it to ``out_path``.

    Args:
        map_path: a class map (one band of class indices; names from terraseg's tags or GDAL category names).
        out_path: ``.gpkg`` (recommended), ``.geojson`` or ``.csv``; a QGIS ``.qml`` is written beside it.
        n: total sample size. When ``None``, it follows from ``target_se`` (default 0.01) by eq. 13.
        target_se: target standard error of overall accuracy.
        expected_ua: expected user's accuracy per class name (others get ``default_ua``).
        min_per_class: the fewest points a class with pixels gets (never more than its pixels).
        seed: random seed; the same map, options and seed give the same points.

    Returns:
        The design: total ``n``, how it was chosen, and per stratum its pixels, area, weight,
        expected user's accuracy and points (``strata``).
    """
    from terraseg.assess.classmap import class_areas, open_class_map
    from terraseg.assess.points import write_points
    from terraseg.assess.stats import allocate, sample_size

    if n is not None and target_se is not None:
        raise ConfigError("give either --n or --target-se, not both")
    if n is not None and n < 1:
        raise ConfigError("--n must be at least 1")
    if target_se is not None and not 0 < target_se < 1:
        raise ConfigError("--target-se must lie between 0 and 1, e.g. 0.01")
    if min_per_class < 0:
        raise ConfigError("--min-per-class must not be negative")
    cmap = open_class_map(map_path)
    areas = class_areas(cmap, progress=progress, description="counting strata")
    names = areas.names
    cmap.names = names  # a map without names: the values it holds
    k = len(names)
    if k == 0 or areas.pixels.sum() == 0:
        raise DataError("holds no classified pixel (everything is nodata)", map_path)
    ua = {name: default_ua for name in names}
    ua.update(expected_ua or {})
    size = areas.m2 if areas.m2 is not None else areas.pixels.astype(np.float64)
    weights = size / size.sum()
    active = areas.pixels > 0
    chosen_by = "n"
    if n is None:
        target_se = DEFAULT_TARGET_SE if target_se is None else target_se
        n = sample_size(weights[active], [ua[nm] for nm, a in zip(names, active) if a], target_se)
        chosen_by = "target_se"
    floor = min_per_class * int(active.sum())
    if n < floor:
        warnings.warn(f"a sample of {n:,} points cannot give {int(active.sum())} classes {min_per_class} points each; "
                      f"drawing {floor:,} points", stacklevel=2)
        n = floor
    alloc = allocate(n, size * active, min_per_class)
    alloc = np.minimum(alloc, areas.pixels)
    short = [nm for nm, a, px in zip(names, alloc, areas.pixels) if 0 < px <= a and px < min_per_class]
    if short:
        warnings.warn(f"classes with fewer pixels than --min-per-class are sampled whole: {', '.join(short)}",
                      stacklevel=2)
    rng = np.random.default_rng(seed)
    ranks = [np.sort(rng.choice(int(areas.pixels[h]), size=int(alloc[h]), replace=False)).astype(np.int64)
             if alloc[h] else np.zeros(0, np.int64) for h in range(k)]
    rows, cols, cls = _draw(cmap, k, ranks, progress)
    order = rng.permutation(len(rows))
    rows, cols, cls = rows[order], cols[order], cls[order]
    t = cmap.transform
    if t is None:
        xs, ys = cols + 0.5, rows + 0.5
    else:
        cc, rr = cols + 0.5, rows + 0.5
        xs, ys = t.a * cc + t.b * rr + t.c, t.d * cc + t.e * rr + t.f
    write_points(out_path, xs, ys, [names[c] for c in cls], cmap.crs, names, areas.colors)
    strata = []
    for h, name in enumerate(names):
        strata.append({"name": name, "index": h, "pixels": int(areas.pixels[h]),
                       "map_area_m2": float(areas.m2[h]) if areas.m2 is not None else None,
                       "weight": float(weights[h]), "expected_users_accuracy": float(ua[name]),
                       "points": int(alloc[h])})
    return {"map": str(map_path), "points_file": str(out_path), "n": int(len(rows)), "chosen_by": chosen_by,
            "target_se": target_se if chosen_by == "target_se" else None, "min_per_class": int(min_per_class),
            "seed": int(seed), "area_method": areas.area_method, "strata": strata}
