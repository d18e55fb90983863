"""``terraseg data inspect``: look at a folder of images and masks before training on it.

Finds the images and masks (:mod:`terraseg.data.layout`), reads every mask, discovers the palette
(every distinct colour with its pixel count and share; near-duplicate colours of JPEG or anti-aliased
masks grouped into class colours with their spread, :mod:`terraseg.data.clusters`; index masks saved as
RGB recognised), lists images without masks, masks without images, size mismatches and unreadable
files, names the classes from a ``dataset.yaml``/``classes.json``/``class_dict.csv`` in the folder
(reporting every one that disagrees with the masks) and drafts a dataset YAML.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terraseg.data.draft import draft_spec, write_draft
from terraseg.data.palette import count_values, pack_rgb, to_hex, unpack_color
from terraseg.data.raster import raster_info, read_raster, uses_pillow
from terraseg.errors import ConfigError, DataError, TerrasegError

#: masks with up to this many colours are remembered one by one (to spot per-image colormaps)
_PER_MASK_COLORS = 64


@dataclass
class PaletteEntry:
    """A mask colour (``(r, g, b)``) or value (``(v,)``) with its pixels and share; for noisy masks a
    class colour with the near-duplicates that belong to it (``colors`` of them, up to ``spread`` away)."""

    color: tuple
    pixels: int
    share: float
    name: str | None = None  # class name the draft YAML gives it (None: ignored)
    source: str = ""  # where the name comes from ("classes.json", "generated", "ignored", ...)
    colors: int = 1
    spread: int = 0
    named_color: tuple | None = None  # the colour a name file gives it, when near but not equal

    @property
    def label(self) -> str:
        return to_hex(self.color) if len(self.color) == 3 else str(self.color[0])


@dataclass
class InspectReport:
    """What ``inspect_dataset`` found."""

    root: Path
    images_patterns: list[str]
    masks_patterns: list[str]
    mask_type: str  # "rgb" or "index"
    n_images: int
    n_masks: int
    n_pairs: int
    bands: int | None
    palette: list[PaletteEntry] = field(default_factory=list)
    images_without_masks: list[Path] = field(default_factory=list)
    masks_without_images: list[Path] = field(default_factory=list)
    size_mismatches: list[tuple[Path, Path, tuple[int, int], tuple[int, int]]] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    group: str | None = None
    layout: str = ""  # how the images and masks were found
    mask_channel: int | None = None  # index masks saved as RGB: the channel holding the values
    tolerance: int = 0  # colour tolerance of the draft (noisy masks)
    distinct_colors: int = 0
    beyond: dict = field(default_factory=dict)  # colours beyond the tolerance -> pixels (to be ignored)
    blends: list[tuple] = field(default_factory=list)
    mask_pixels: int = 0
    name_files: list[Path] = field(default_factory=list)
    draft: dict[str, Any] = field(default_factory=dict)
    yaml_path: Path | None = None

    @property
    def images_pattern(self) -> str:
        return ", ".join(self.images_patterns)

    @property
    def masks_pattern(self) -> str:
        return ", ".join(self.masks_patterns)

    @property
    def total_pixels(self) -> int:
        return self.mask_pixels

    @property
    def ok(self) -> bool:
        return not (self.size_mismatches or self.unreadable)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root), "images": self.images_patterns, "masks": self.masks_patterns,
            "layout": self.layout, "mask_type": self.mask_type, "mask_channel": self.mask_channel,
            "n_images": self.n_images, "n_masks": self.n_masks, "n_pairs": self.n_pairs, "bands": self.bands,
            "distinct_colors": self.distinct_colors, "tolerance": self.tolerance,
            "palette": [{"color": list(e.color), "hex": e.label, "pixels": e.pixels, "share": e.share,
                         "name": e.name, "colors": e.colors, "spread": e.spread} for e in self.palette],
            "beyond_tolerance_pixels": int(sum(self.beyond.values())),
            "blends": [to_hex(c) for c in self.blends],
            "images_without_masks": [str(p) for p in self.images_without_masks],
            "masks_without_images": [str(p) for p in self.masks_without_images],
            "size_mismatches": [{"image": str(i), "mask": str(m), "image_size": list(a), "mask_size": list(b)}
                                for i, m, a, b in self.size_mismatches],
            "unreadable": [{"path": str(p), "error": e} for p, e in self.unreadable],
            "warnings": list(self.warnings), "group": self.group,
            "yaml": str(self.yaml_path) if self.yaml_path else None,
        }


# ---------------------------------------------------------------------------- checks
def _check_readable(path: Path) -> str | None:
    """``None`` when the whole file decodes, else the problem."""
    try:
        if uses_pillow(path):
            read_raster(path)
        else:
            import rasterio
            from rasterio.windows import Window

            info = raster_info(path)
            with rasterio.open(path) as ds:  # the last row catches truncated files
                ds.read(window=Window(0, info.height - 1, info.width, 1))
        return None
    except TerrasegError as exc:
        return str(exc).split(": ", 1)[-1] if exc.path else str(exc)
    except Exception as exc:  # rasterio errors on damaged blocks
        return f"cannot read ({' '.join(str(exc).split())[:200]})"


def inspect_dataset(directory: str | Path, out_yaml: str | Path | None = None, *, images: str | None = None,
                    masks: str | None = None, tolerance: int | None = None, progress: bool = True,
                    overwrite: bool = True) -> InspectReport:
    """Inspect a folder of images and masks; write a draft dataset YAML to ``out_yaml`` when given.

    ``images``/``masks`` (folder or glob patterns relative to ``directory``) override the layout
    discovery. ``tolerance`` groups mask colours within that many levels per channel (``None``: 0 for
    clean masks, the largest that keeps the class colours apart for noisy ones). Raises
    :class:`DataError` when the folder is missing, empty, or nothing pairs.
    """
    from terraseg._progress import track
    from terraseg.data.layout import Layout, find_layout, no_pairs_error
    from terraseg.data.spec import _resolve

    root = Path(directory)
    if not root.is_dir():
        raise DataError("not a folder" if root.exists() else "folder not found", root)
    root = root.resolve()
    if (images is None) != (masks is None):
        raise ConfigError("give both --images and --masks patterns, or neither")
    if tolerance is not None and (tolerance < 0 or tolerance > 255):
        raise ConfigError(f"tolerance {tolerance} is not between 0 and 255")
    if out_yaml is not None and not overwrite and Path(out_yaml).exists():
        raise DataError("file exists; choose another name or allow overwriting (--force)", out_yaml)
    layout = Layout(root, [images], [masks], how="--images/--masks") if images is not None else find_layout(root)
    data_root = layout.root
    img_map = _resolve(data_root, layout.images, "images")
    msk_map = _resolve(data_root, layout.masks, "masks")
    if not img_map:
        raise DataError(f"empty folder: no images match {', '.join(layout.images)}", data_root)
    if not msk_map:
        raise DataError(f"no masks match {', '.join(layout.masks)}; say where they are with --masks", data_root)
    report = InspectReport(root=data_root, images_patterns=layout.images, masks_patterns=layout.masks,
                           mask_type="rgb", n_images=len(img_map), n_masks=len(msk_map), n_pairs=0, bands=None,
                           group=layout.group, layout=layout.how)
    pairs = sorted(((img_map[k], msk_map[k]) for k in img_map if k in msk_map), key=lambda t: str(t[0]))
    if not pairs:
        files = sorted(img_map.values())[:2] + sorted(msk_map.values())[:2]
        err = no_pairs_error(data_root, files)
        raise DataError(f"{len(img_map)} image(s) ({', '.join(layout.images)}) and {len(msk_map)} mask(s) "
                        f"({', '.join(layout.masks)}) but no name pairs: " + str(err).split(": ", 1)[-1], data_root)
    report.n_pairs = len(pairs)
    report.images_without_masks = sorted(p for k, p in img_map.items() if k not in msk_map)
    report.masks_without_images = sorted(p for k, p in msk_map.items() if k not in img_map)

    band_counts: Counter = Counter()
    unreadable_images = set()
    for img in track(sorted(img_map.values()), description="checking images") if progress else sorted(img_map.values()):
        problem = _check_readable(img)
        if problem:
            report.unreadable.append((img, problem))
            unreadable_images.add(img)
        else:
            band_counts[raster_info(img).count] += 1
    if band_counts:
        report.bands = band_counts.most_common(1)[0][0]
        if len(band_counts) > 1:
            report.warnings.append("images have different band counts: " + ", ".join(
                f"{n} image(s) with {b} band(s)" for b, n in sorted(band_counts.items())))
    totals, per_mask = _read_masks(report, pairs, unreadable_images, progress)
    totals = _analyse_palette(report, totals, per_mask, tolerance)
    _name_classes(report)
    _settle_tolerance(report, totals, tolerance)
    _summarise_problems(report)
    if not any(e.name is not None for e in report.palette):
        raise DataError("the masks hold no class colour or value (every mask pixel would be ignored); "
                        "check --masks", data_root)
    report.draft = draft_spec(report)
    if out_yaml is not None:
        report.yaml_path = write_draft(report, out_yaml)
    return report


def _read_masks(report: InspectReport, pairs, unreadable_images: set, progress: bool
                ) -> tuple[dict[tuple, int], list[set]]:
    """``({colour or (value,): pixels} over all masks of the commonest kind, [colours of each small mask]})``."""
    from terraseg._progress import track

    totals: dict[str, dict[tuple, int]] = {"rgb": {}, "index": {}}
    kinds: Counter = Counter()
    per_mask: list[set] = []
    for img, msk in track(pairs, total=len(pairs), description="reading masks") if progress else pairs:
        try:
            arr = read_raster(msk)
        except TerrasegError as exc:
            report.unreadable.append((msk, str(exc).split(": ", 1)[-1] if exc.path else str(exc)))
            continue
        if img not in unreadable_images:
            info = raster_info(img)
            if (info.height, info.width) != arr.shape[:2]:
                report.size_mismatches.append((img, msk, (info.width, info.height), (arr.shape[1], arr.shape[0])))
        kind = "rgb" if arr.shape[-1] >= 3 else "index"
        kinds[kind] += 1
        if kind == "rgb":
            vals, cnts = count_values(pack_rgb(arr))
            keys = [unpack_color(v) for v in vals]
            if len(keys) <= _PER_MASK_COLORS:
                per_mask.append(set(keys))
        else:
            vals, cnts = count_values(arr[:, :, 0])
            keys = [(int(v),) for v in vals]
        for k, c in zip(keys, cnts):
            totals[kind][k] = totals[kind].get(k, 0) + int(c)
    if len(kinds) > 1:
        report.warnings.append(f"{kinds['rgb']} mask(s) are RGB colour masks and {kinds['index']} are "
                               "single-band index masks; use one kind")
    report.mask_type = kinds.most_common(1)[0][0] if kinds else "rgb"
    return totals[report.mask_type], per_mask


def _analyse_palette(report: InspectReport, totals: dict[tuple, int], per_mask: list[set],
                     tolerance: int | None) -> dict[tuple, int]:
    """Fill ``report.palette``: values, colours, or class colours with their near-duplicates; returns the
    counts the palette is made of (class values for index masks saved as RGB)."""
    from terraseg.data.clusters import cluster_colors, colormap_per_image, index_channel

    grand = sum(totals.values()) or 1
    report.mask_pixels = sum(totals.values())
    report.distinct_colors = len(totals)
    if report.mask_type == "rgb":
        channel = index_channel(list(totals))
        if channel is not None:  # an index mask saved as RGB
            report.mask_type, report.mask_channel = "index", channel
            values: dict[tuple, int] = {}
            for c, n in totals.items():
                values[(c[channel],)] = values.get((c[channel],), 0) + n
            totals = values
            which = "grey levels" if channel == 0 and all(len(set(c)) == 1 for c in values) else \
                f"the {('red', 'green', 'blue')[channel]} channel"
            report.warnings.append(f"every mask colour lies in {which} with small values "
                                   f"({', '.join(str(v[0]) for v in sorted(totals))}): read as class values "
                                   f"(mask_channel: {channel}); 0 (black) is a class value, not ignored")
    if report.mask_type == "index":
        report.palette = [PaletteEntry(k, n, n / grand) for k, n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]
        return totals
    problem = colormap_per_image(per_mask) if len(totals) > max((len(s) for s in per_mask), default=0) else None
    if problem:
        raise DataError(problem, report.root)
    pal = cluster_colors(totals, tolerance)
    report.tolerance, report.beyond, report.blends = pal.tolerance, pal.beyond, pal.blends
    report.palette = [PaletteEntry(c.color, c.pixels, c.pixels / grand, colors=c.colors, spread=c.spread)
                      for c in pal.clusters]
    return totals


def _settle_tolerance(report: InspectReport, totals: dict[tuple, int], tolerance: int | None) -> None:
    """Recount the clusters around the colours the draft gives (named colours replace the observed ones), with
    the tolerance those colours allow: the figures are then what convert-masks and training will find."""
    from terraseg.data.clusters import assign, auto_tolerance
    from terraseg.data.ignored import describe_unknown

    if report.mask_type != "rgb" or not report.tolerance:
        return
    final = [e.named_color or e.color for e in report.palette]
    report.tolerance = auto_tolerance(final) if tolerance is None else tolerance
    clusters, report.beyond = assign(totals, final, report.tolerance)
    grand = report.mask_pixels or 1
    for e, c in zip(report.palette, clusters):
        e.pixels, e.share, e.colors, e.spread = c.pixels, c.pixels / grand, c.colors, c.spread
    beyond = sum(report.beyond.values())
    report.warnings.append(
        f"{len(totals):,} distinct colours grouped into {len(report.palette)} class colours with a tolerance of "
        f"{report.tolerance} per channel (largest spread {max(e.spread for e in report.palette)}); the draft YAML "
        f"sets color_tolerance: {report.tolerance}")
    if report.blends:
        report.warnings.append(f"{len(report.blends)} frequent colour(s) lie between two class colours and are taken "
                               "as edge blends, not classes: " + ", ".join(to_hex(c) for c in report.blends[:5]))
    if beyond:
        report.warnings.append(f"{beyond:,} pixel(s) ({100 * beyond / grand:.2f} %) lie farther than the tolerance "
                               "from every class colour and will be ignored: " + describe_unknown(report.beyond, grand))


def _name_classes(report: InspectReport) -> None:
    """Names from the folder's name files (exact colour, else within the tolerance); black is ignored unless named."""
    import numpy as np

    from terraseg.data.names import read_class_names
    from terraseg.data.palette import nearest_colors

    sources = read_class_names(report.root)
    report.name_files = [s.path for s in sources]
    for src in sources:
        if src.problem:
            report.warnings.append(src.problem)
    rgb = report.mask_type == "rgb"
    matched: dict[Path, set] = {s.path: set() for s in sources}  # named colours/values found in the masks
    named_entries: dict[Path, set] = {s.path: set() for s in sources}  # palette entries each file names
    k = 0
    for e in report.palette:
        e.name, e.source = None, ""
        for src in sources:
            table = src.colors if rgb else src.values
            hit = e.color if e.color in table else None
            if hit is None and rgb and report.tolerance and table:
                named = list(table)
                near, cheb, _ = nearest_colors(np.array([e.color]), np.array(named))
                hit = named[int(near[0])] if cheb[0] <= report.tolerance else None
            if hit is not None:
                matched[src.path].add(hit)
                named_entries[src.path].add(id(e))
                if e.name is None:
                    e.name, e.source = table[hit], src.path.name
                    e.named_color = hit if hit != e.color else None
        if e.name is not None:
            k += 1
        elif e.color == ((0, 0, 0) if rgb else (255,)):
            e.source = "ignored"
        else:
            e.name, e.source = (f"class_{k}" if rgb else f"class_{e.color[0]}"), "generated"
            k += 1
    for src in sources:
        table = src.colors if rgb else src.values
        if not table:
            continue
        missing = [(n, c) for c, n in table.items() if c not in matched[src.path]]
        unnamed = [e for e in report.palette if e.source != "ignored" and id(e) not in named_entries[src.path]]
        if missing or unnamed:
            parts = []
            if missing:
                parts.append(f"it names {len(missing)} {'colour' if rgb else 'value'}(s) never found in the masks ("
                             + ", ".join(f"{n} {to_hex(c) if rgb else c[0]}" for n, c in missing[:8])
                             + (" ..." if len(missing) > 8 else "") + ")")
            if unnamed:
                parts.append(f"{len(unnamed)} mask {'colour' if rgb else 'value'}(s) are not in it ("
                             + ", ".join(e.label for e in unnamed[:8]) + (" ..." if len(unnamed) > 8 else "") + ")")
            report.warnings.append(f"{src.path.name} disagrees with the masks: " + "; ".join(parts)
                                   + "; the draft YAML uses the colours found in the masks")
    black = next((e for e in report.palette if e.source == "ignored"), None)
    if black is not None:
        report.warnings.append(f"{black.pixels} pixel(s) ({100 * black.share:.2f} %) are {black.label}, a colour no "
                               "class owns; the draft YAML ignores them")


def _summarise_problems(report: InspectReport) -> None:
    def few(paths):
        shown = ", ".join(_rel(p, report.root) for p in paths[:3])
        return shown + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")

    if report.images_without_masks:
        report.warnings.append(f"{len(report.images_without_masks)} image(s) without a mask: "
                               f"{few(report.images_without_masks)}")
    if report.masks_without_images:
        report.warnings.append(f"{len(report.masks_without_images)} mask(s) without an image: "
                               f"{few(report.masks_without_images)}")
    for img, msk, a, b in report.size_mismatches:
        report.warnings.append(f"{_rel(msk, report.root)}: mask is {b[0]}x{b[1]} but its image is {a[0]}x{a[1]}")
    for p, problem in report.unreadable:
        report.warnings.append(f"{_rel(p, report.root)}: unreadable ({problem})")


def _rel(p: Path, root: Path) -> str:
    try:
        return Path(p).relative_to(root).as_posix()
    except ValueError:
        return str(p)


__all__ = ["InspectReport", "PaletteEntry", "inspect_dataset", "draft_spec", "write_draft"]
