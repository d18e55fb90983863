"""Change between two class maps: transition matrix in pixels and ground area, gains / losses / net
change per class, a change raster with category names (``vegetation → building``) and optional
change polygons.

Public API (imported lazily; ``import terraseg.change`` imports neither rasterio nor fiona)::

    from terraseg.change import compare_maps

* ``compare_maps(map_a, map_b, out_dir, vector=None)`` -> the change report — :mod:`terraseg.change.compare`

The change raster is a class map like any other: sample and assess it with :mod:`terraseg.assess`.
"""

from __future__ import annotations

from terraseg._lazy import lazy_exports

_EXPORTS = {
    "compare_maps": "compare",
    "transition_names": "compare",
    "union_classes": "compare",
    "write_change_report": "report",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
