"""Mask conversion: RGB colour masks -> single-band class-index masks, and back for viewing."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from terraseg.data.palette import to_hex
from terraseg.data.raster import RASTER_SUFFIXES, list_rasters, read_raster, uses_pillow
from terraseg.errors import ConfigError, DataError


@dataclass
class ConvertReport:
    """What ``convert_masks`` / ``colorize_masks`` wrote."""

    out_dir: Path
    written: list[Path] = field(default_factory=list)
    unknown: dict = field(default_factory=dict)  # colour/value no class owns -> pixels (all files)
    files_with_unknown: list[Path] = field(default_factory=list)
    pixels: int = 0
    yaml_path: Path | None = None

    @property
    def unknown_pixels(self) -> int:
        return int(sum(self.unknown.values()))

    def describe_unknown(self) -> str:
        from terraseg.data.ignored import describe_unknown

        return describe_unknown(self.unknown, self.pixels)


def _as_spec(spec):
    if isinstance(spec, (str, Path)):
        from terraseg.data.spec import load_spec

        return load_spec(spec)
    return spec


def _out_suffix(src: Path, fmt: str | None) -> str:
    if fmt is None:
        return ".png" if uses_pillow(src) else ".tif"
    fmt = fmt.lower().lstrip(".")
    if fmt not in ("png", "tif", "tiff"):
        raise ConfigError(f"format {fmt!r} is not 'png' or 'tif'")
    return "." + fmt


def _rel_paths(paths: list[Path], root: Path) -> list[Path]:
    """Output-relative paths: below ``root`` when every path is, else below their common folder."""
    rels = [Path(os.path.relpath(p, root)) for p in paths]
    if all(not r.parts or r.parts[0] != ".." for r in rels):
        return rels
    common = Path(os.path.commonpath([str(Path(p).resolve().parent) for p in paths]))
    return [Path(p).resolve().relative_to(common) for p in paths]


def _with_suffix_pattern(pattern: str, suffix: str) -> str:
    return re.sub(r"\.(png|tif|tiff|jpg|jpeg|bmp|gif|webp)$", suffix, pattern, flags=re.I)


def convert_masks(spec, out_dir: str | Path, fmt: str | None = None, *, strict: bool = False,
                  progress: bool = True) -> ConvertReport:
    """Write every mask of ``spec`` as a single-band uint8 class-index mask under ``out_dir``.

    Paths below the data set's root are kept (``Tile 1/masks/x.png`` -> ``out_dir/Tile 1/masks/x.png``).
    Colours no class owns (beyond ``color_tolerance``/``color_snap``) become the ignore index and are
    counted in the report; ``strict=True`` (or ``unknown: error`` in the YAML) makes them an error
    instead, and so does more than ``max_ignored_share`` of all pixels becoming ignore (nothing is
    written then). GeoTIFF masks keep their georeference.
    Also writes ``out_dir/dataset.yaml`` describing the same images with the converted masks.
    """
    spec = _as_spec(spec)
    out = Path(out_dir)
    samples = spec.labelled()
    if not samples:
        raise DataError("the data set has no masks to convert", spec.path or spec.root)
    from terraseg.data._staging import rebase, staged_dir

    with staged_dir(out) as stage:
        report = _convert(spec, samples, stage, fmt, strict, progress)
        report.yaml_path = _write_index_spec(spec, stage, fmt, final=out)
    report.out_dir = out
    report.written = rebase(report.written, stage, out)
    report.yaml_path = out / "dataset.yaml"
    return report


def _convert(spec, samples, out: Path, fmt, strict: bool, progress: bool) -> ConvertReport:
    from terraseg._progress import track
    from terraseg.data.raster import write_raster

    from terraseg.data.ignored import IgnoreTally

    report = ConvertReport(out)
    tally = IgnoreTally(spec.num_classes)
    cmap = {i: c for i, c in enumerate(spec.colors)}
    rels = _rel_paths([s.mask for s in samples], spec.root)
    for s, rel in track(list(zip(samples, rels)), description="converting masks") if progress else zip(samples, rels):
        raw = read_raster(s.mask, palette_indices=spec.mask_type == "index")
        index, unknown = spec.mask_to_index(raw, s.mask)
        if unknown:
            if strict or spec.unknown == "error":
                from terraseg.data.spec import _describe_unknown

                raise DataError(f"mask has {_describe_unknown(unknown)} that no class owns; add them to 'classes' "
                                "or 'ignore' in the dataset YAML", s.mask)
            report.files_with_unknown.append(s.mask)
        tally.add(index, unknown)
        suffix = _out_suffix(s.mask, fmt)
        dest = out / rel.with_suffix(suffix)
        if suffix == ".png":
            write_raster(dest, index)
        else:
            write_raster(dest, index, like=s.mask if not uses_pillow(s.mask) else None, colormap=cmap)
        report.written.append(dest)
        report.pixels += index.size
    tally.check(spec.max_ignored_share, spec.path or spec.root)
    report.unknown = tally.unknown
    return report


def _write_index_spec(spec, out: Path, fmt: str | None, final: Path) -> Path:
    from terraseg._io import write_text_atomic
    from terraseg.data.spec import _relpath, dump_yaml, spec_from_dict

    d = spec.to_dict(relative_to=final.resolve())
    rel_out = _relpath(final, spec.root)
    masks = []
    for pat in spec.masks:
        if Path(pat).suffix.lower() in RASTER_SUFFIXES:
            pat = _with_suffix_pattern(pat, _out_suffix(Path(pat), fmt))
        masks.append(f"{rel_out}/{pat}")
    d["masks"] = masks[0] if len(masks) == 1 else masks
    d["name"] = f"{spec.name}-index"
    d["classes"] = [{"name": c.name, "value": i, "color": to_hex(c.color)} for i, c in enumerate(spec.classes)]
    d["ignore"] = [spec.ignore_index]
    for key in ("unknown", "color_tolerance", "color_snap", "mask_channel"):  # the written masks are plain indices
        d.pop(key, None)
    d["mask_type"] = "index"
    path = out / "dataset.yaml"
    spec_from_dict(dict(d, root=str(spec.root), masks=spec.masks), base_dir=out.resolve())  # must be valid
    text = (f"# {spec.name} with class-index masks written by `terraseg data convert-masks`.\n" + dump_yaml(d))
    return write_text_atomic(path, text)


def _iter_inputs(inputs: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """``[(file, path relative to its input folder)]`` for files and folders of rasters."""
    out = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = list_rasters(p)
            out += [(f, f.relative_to(p)) for f in files]
        elif p.is_file():
            out.append((p, Path(p.name)))
        else:
            raise DataError("file or folder not found", p)
    if not out:
        raise DataError("empty folder: no masks to colorize", ", ".join(str(i) for i in inputs))
    return out


def colorize_masks(spec, inputs: Iterable[str | Path] | None, out_dir: str | Path, *,
                   progress: bool = True) -> ConvertReport:
    """Class-index masks -> RGB colour PNGs (GeoTIFFs stay GeoTIFF) with the data set's colours.

    ``inputs`` are index-mask files or folders (e.g. predictions or converted masks); ``None`` takes
    the masks of ``spec`` (which must then describe index masks). Values without a class get the
    first ignore colour (black by default) and are counted in the report.
    """
    spec = _as_spec(spec)
    out = Path(out_dir)
    if inputs is None:
        if spec.mask_type != "index":
            raise ConfigError("the data set's masks are already colour masks; pass index masks to colorize",
                              spec.path)
        masks = [s.mask for s in spec.labelled()]
        pairs = list(zip(masks, _rel_paths(masks, spec.root)))
    else:
        pairs = _iter_inputs(list(inputs))
    from terraseg.data._staging import rebase, staged_dir

    with staged_dir(out) as stage:
        report = _colorize(spec, pairs, stage, inputs is None, progress)
    report.out_dir = out
    report.written = rebase(report.written, stage, out)
    return report


def _colorize(spec, pairs, out: Path, own_masks: bool, progress: bool) -> ConvertReport:
    from terraseg._progress import track
    from terraseg.data.raster import write_raster

    report = ConvertReport(out)
    n = spec.num_classes
    for src, rel in track(pairs, description="colorizing") if progress else pairs:
        arr = read_raster(src, palette_indices=True)
        if arr.shape[-1] != 1:
            raise DataError(f"expected a single-band class-index mask, got {arr.shape[-1]} bands", src)
        index = arr[:, :, 0]
        if spec.mask_type == "index" and own_masks:
            index, unknown = spec.mask_to_index(arr, src)
        else:
            bad = (index >= n) & (index != spec.ignore_index)
            unknown = {}
            if bad.any():
                vals, cnts = np.unique(index[bad], return_counts=True)
                unknown = {int(v): int(c) for v, c in zip(vals, cnts)}
        if unknown:
            report.files_with_unknown.append(src)
            for k, c in unknown.items():
                report.unknown[k] = report.unknown.get(k, 0) + int(c)
        rgb = spec.colorize(index)
        is_tif = src.suffix.lower() in (".tif", ".tiff")
        dest = out / rel.with_suffix(".tif" if is_tif else ".png")
        write_raster(dest, rgb, like=src if is_tif else None)
        report.written.append(dest)
        report.pixels += index.size
    return report


__all__ = ["ConvertReport", "convert_masks", "colorize_masks"]
