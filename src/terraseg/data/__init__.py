"""The data toolkit: raster I/O, palettes, dataset descriptions and the data-preparation commands.

Names are loaded lazily so ``import terraseg.data`` stays light (torch is only imported by
``terraseg.data.dataset`` when ``SegmentationDataset`` is used).
"""

from __future__ import annotations

from terraseg._lazy import lazy_exports

_EXPORTS = {
    "raster_info": "raster", "read_raster": "raster", "write_raster": "raster", "list_rasters": "raster",
    "RasterInfo": "raster",
    "rgb_to_index": "palette", "values_to_index": "palette", "colorize": "palette", "discover_palette": "palette",
    "load_spec": "spec", "spec_from_dict": "spec", "DatasetSpec": "spec", "Sample": "spec",
    "generate_sample": "sample",
    "inspect_dataset": "inspect", "InspectReport": "inspect",
    "convert_masks": "convert", "colorize_masks": "convert",
    "compute_stats": "stats", "DatasetStats": "stats", "write_stats_to_yaml": "stats",
    "make_split": "split", "write_split": "split", "load_split": "split",
    "chip_dataset": "chip",
    "SegmentationDataset": "dataset", "build_augment": "dataset",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
