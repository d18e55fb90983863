"""``terraseg data chip``: cut large images and masks into fixed-size chips.

Chips are read with windowed reads (rasterio for TIFF/GeoTIFF; JPG/PNG are decoded once per image),
chips whose mask is mostly ignore or whose image is mostly nodata are skipped, GeoTIFF chips keep
their georeference (the window's transform), and a dataset YAML for the chips is written (index
masks, same classes, same group rule, so a group split still keeps chips of one place together).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from terraseg.data.palette import to_hex
from terraseg.data.raster import uses_pillow
from terraseg.errors import ConfigError, DataError


@dataclass
class ChipReport:
    out_dir: Path
    chips: int = 0
    skipped: int = 0
    images: int = 0
    yaml_path: Path | None = None
    written: list[Path] = field(default_factory=list)


def chip_positions(length: int, size: int, stride: int) -> list[int]:
    """Offsets covering ``length`` with windows of ``size`` every ``stride`` (the last one flush with the end)."""
    if length <= size:
        return [0]
    pos = list(range(0, length - size + 1, stride))
    if pos[-1] != length - size:
        pos.append(length - size)
    return pos


def chip_dataset(spec, out_dir: str | Path, size: int = 512, stride: int | None = None, *,
                 min_valid: float = 0.5, fmt: str | None = None, samples: Sequence | None = None,
                 progress: bool = True) -> ChipReport:
    """Cut every labelled image of ``spec`` (or ``samples``) into ``size`` x ``size`` chips.

    ``stride`` defaults to ``size`` (no overlap). A chip is kept when at least ``min_valid`` of its
    pixels are labelled (not ignore, not nodata). Images smaller than ``size`` give one smaller chip.
    ``fmt`` is ``"tif"`` or ``"png"`` (default: GeoTIFF for TIFF sources, PNG otherwise). Writes
    ``out_dir/images/...``, ``out_dir/masks/...`` (class-index masks) and ``out_dir/dataset.yaml``.
    """

    if isinstance(spec, (str, Path)):
        from terraseg.data.spec import load_spec

        spec = load_spec(spec)
    stride = stride or size
    if size < 8 or stride < 1:
        raise ConfigError(f"chip size {size} must be >= 8 and stride {stride} >= 1")
    if not 0 <= min_valid <= 1:
        raise ConfigError(f"min_valid {min_valid} must be between 0 and 1")
    if fmt is not None and fmt.lower().lstrip(".") not in ("tif", "tiff", "png"):
        raise ConfigError(f"format {fmt!r} is not 'png' or 'tif'")
    items = list(samples) if samples is not None else spec.labelled()
    if not items:
        raise DataError("the data set has no labelled images to chip", spec.path or spec.root)
    from terraseg.data._staging import rebase, staged_dir

    final = Path(out_dir)
    with staged_dir(final) as out:
        report = _chip(spec, items, out, final, size, stride, min_valid, fmt, progress)
    report.out_dir = final
    report.written = rebase(report.written, out, final)
    report.yaml_path = final / "dataset.yaml"
    return report


def _chip(spec, items, out: Path, final: Path, size: int, stride: int, min_valid: float, fmt, progress: bool):
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    from terraseg._io import write_text_atomic
    from terraseg._progress import track
    from terraseg.data.layout import IMAGE_DIR_NAMES
    from terraseg.data.raster import write_raster
    from terraseg.data.spec import _relpath, dump_yaml, spec_from_dict

    report = ChipReport(out)
    cmap = {i: c for i, c in enumerate(spec.colors)}
    for s in track(items, description="chipping") if progress else items:
        info = spec.info(s)
        suffix = "." + (fmt.lower().lstrip(".") if fmt else ("png" if uses_pillow(s.image) else "tif"))
        if suffix == ".png" and (info.count not in (1, 3, 4) or np.dtype(info.dtype) != np.uint8):
            raise ConfigError(f"PNG chips cannot hold {info.count} band(s) of {info.dtype}; use tif", s.image)
        whole = spec.read_pair(s) if uses_pillow(s.image) else None
        rel = Path(s.key)
        report.images += 1
        for row in chip_positions(info.height, size, stride):
            for col in chip_positions(info.width, size, stride):
                win = Window(col, row, min(size, info.width), min(size, info.height))
                if whole is not None:
                    h, w = int(win.height), int(win.width)
                    img, mask = whole[0][row:row + h, col:col + w], whole[1][row:row + h, col:col + w]
                else:
                    img, mask = spec.read_pair(s, win)
                valid = float((mask != spec.ignore_index).mean())
                if valid < min_valid or valid == 0:
                    report.skipped += 1
                    continue
                name = f"{rel.stem}_r{row:05d}_c{col:05d}{suffix}"
                sub = rel.parent.parent if rel.parent.name.lower() in IMAGE_DIR_NAMES else rel.parent
                ip = out / "images" / sub / name
                mp = out / "masks" / sub / name
                georef = suffix != ".png" and info.transform is not None
                geo = {"crs": info.crs, "transform": window_transform(win, info.transform)} if georef else {}
                write_raster(ip, img, like=info if georef else None, window=win if georef else None,
                             png_compress_level=1)
                write_raster(mp, mask, colormap=cmap if suffix != ".png" else None, **geo)
                report.chips += 1
                report.written.append(ip)
    if report.chips == 0:
        raise DataError(f"every chip was skipped (fewer than {min_valid:.0%} labelled pixels)", spec.path or spec.root)
    d = {"name": f"{spec.name}-chips{size}", "images": "images", "masks": "masks", "bands": spec.bands,
         "classes": [{"name": c.name, "value": i, "color": to_hex(c.color)} for i, c in enumerate(spec.classes)],
         "ignore": [spec.ignore_index], "ignore_index": spec.ignore_index, "mask_type": "index"}
    if spec.nodata is not None:
        d["nodata"] = spec.nodata
    if spec.group:
        d["group"] = spec.group
    if spec.mean is not None:
        d["mean"], d["std"] = list(spec.mean), list(spec.std or [])
    spec_from_dict(d, base_dir=out.resolve())
    header = (f"# {report.chips} chips of {size} px (stride {stride}) cut from {_relpath(spec.path or spec.root, final)} "
              "by `terraseg data chip`.\n")
    report.yaml_path = write_text_atomic(out / "dataset.yaml", header + dump_yaml(d))
    return report


__all__ = ["ChipReport", "chip_dataset", "chip_positions"]
