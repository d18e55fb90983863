"""Accuracy assessment and area estimation of class maps, after Olofsson et al. (2014).

Public API (imported lazily; ``import terraseg.assess`` imports neither rasterio nor fiona)::

    from terraseg.assess import design_sample, estimate_areas

* ``design_sample(map, out_points, n=None, target_se=0.01, ...)`` -> the design (stratified random
  sample with strata = map classes, written as GPKG + QGIS style) — :mod:`terraseg.assess.design`
* ``estimate_areas(map, points_or_reference_raster, out_dir)`` -> the assessment: error matrix,
  accuracies and error-adjusted areas with 95 % confidence intervals — :mod:`terraseg.assess.estimate`
* ``stratified_estimate(counts, strata_area)``, ``census_estimate(area_matrix)``, ``sample_size``,
  ``allocate``: the estimators on plain arrays — :mod:`terraseg.assess.stats`
"""

from __future__ import annotations

from terraseg._lazy import lazy_exports

_EXPORTS = {
    "design_sample": "design",
    "estimate_areas": "estimate",
    "stratified_estimate": "stats",
    "census_estimate": "stats",
    "sample_size": "stats",
    "allocate": "stats",
    "read_points": "points",
    "write_points": "points",
    "open_class_map": "classmap",
    "class_areas": "classmap",
    "write_assessment": "report",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
