"""``terraseg data inspect``: look at a folder of images and masks before training on it.

Finds the image and mask folders (``images/`` + ``masks/``, or one such pair per sub-folder such as
``Tile 1/images`` + ``Tile 1/masks``), reads every mask, discovers the palette (every distinct colour
with its pixel count and share), lists images without masks, masks without images, size mismatches
and unreadable files, compares with a ``classes.json`` shipped with the data, and drafts a dataset
YAML.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from terraseg.data.palette import count_values, pack_rgb, parse_color, to_hex, unpack_color
from terraseg.data.raster import RASTER_SUFFIXES, raster_info, read_raster, uses_pillow
from terraseg.errors import ConfigError, DataError, TerrasegError

IMAGE_DIR_NAMES = ("images", "image", "imgs", "img", "rgb", "scenes")
MASK_DIR_NAMES = ("masks", "mask", "labels", "label", "gt", "ground_truth", "annotations", "annotation", "targets")


@dataclass
class PaletteEntry:
    """One distinct mask colour (``(r, g, b)``) or value (``(v,)``) with its pixel count and share."""

    color: tuple
    pixels: int
    share: float
    name: str | None = None  # class name the draft YAML gives it (None: ignored)
    source: str = ""  # where the name comes from ("classes.json", "generated", "ignored")

    @property
    def label(self) -> str:
        return to_hex(self.color) if len(self.color) == 3 else str(self.color[0])


@dataclass
class InspectReport:
    """What ``inspect_dataset`` found."""

    root: Path
    images_pattern: str
    masks_pattern: str
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
    classes_json: Path | None = None
    draft: dict[str, Any] = field(default_factory=dict)
    yaml_path: Path | None = None

    @property
    def total_pixels(self) -> int:
        return sum(e.pixels for e in self.palette)

    @property
    def ok(self) -> bool:
        return not (self.size_mismatches or self.unreadable)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root), "images": self.images_pattern, "masks": self.masks_pattern,
            "mask_type": self.mask_type, "n_images": self.n_images, "n_masks": self.n_masks,
            "n_pairs": self.n_pairs, "bands": self.bands,
            "palette": [{"color": list(e.color), "hex": e.label, "pixels": e.pixels, "share": e.share,
                         "name": e.name} for e in self.palette],
            "images_without_masks": [str(p) for p in self.images_without_masks],
            "masks_without_images": [str(p) for p in self.masks_without_images],
            "size_mismatches": [{"image": str(i), "mask": str(m), "image_size": list(a), "mask_size": list(b)}
                                for i, m, a, b in self.size_mismatches],
            "unreadable": [{"path": str(p), "error": e} for p, e in self.unreadable],
            "warnings": list(self.warnings), "group": self.group,
            "yaml": str(self.yaml_path) if self.yaml_path else None,
        }


# ---------------------------------------------------------------------------- layout discovery
def _raster_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES
                  and not p.name.startswith("."))


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _suffix_glob(files: list[Path]) -> str:
    suffixes = {p.suffix for p in files}
    return f"*{suffixes.pop()}" if len(suffixes) == 1 else "*"


def _find_layout(root: Path) -> tuple[str, str, str | None]:
    """``(images pattern, masks pattern, group regex or None)`` relative to ``root``."""
    pairs: list[tuple[str, str, str]] = []  # (parent rel path, image dir name, mask dir name)
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        lower = {d.lower(): d for d in dirnames}
        img = next((lower[n] for n in IMAGE_DIR_NAMES if n in lower), None)
        msk = next((lower[n] for n in MASK_DIR_NAMES if n in lower), None)
        if img and msk:
            rel = Path(dirpath).relative_to(root).as_posix()
            pairs.append(("" if rel == "." else rel, img, msk))
    if not pairs:
        if not any(p.suffix.lower() in RASTER_SUFFIXES for p in root.rglob("*") if p.is_file()):
            raise DataError("empty folder: no images found (looked for .jpg, .png, .tif, ...)", root)
        raise DataError("no image folder with a mask folder beside it found (expected e.g. images/ and masks/, "
                        "or Tile 1/images and Tile 1/masks); pass images= and masks= patterns", root)
    top = [p for p in pairs if p[0] == ""]
    if top:
        _, img, msk = top[0]
        return img, msk, None
    depth = {p[0].count("/") for p in pairs}
    if len(depth) != 1:
        raise DataError("image/mask folders lie at different depths; pass images= and masks= patterns", root)
    img_name = Counter(p[1] for p in pairs).most_common(1)[0][0]
    msk_name = Counter(p[2] for p in pairs).most_common(1)[0][0]
    pairs = [p for p in pairs if p[1] == img_name and p[2] == msk_name]
    parents = [p[0] for p in pairs]
    d = depth.pop()
    last = [Path(p).name for p in parents]
    prefix = os.path.commonprefix(last)
    group = None
    if d == 0 and prefix and all(re.fullmatch(r"\d+", n[len(prefix):] or "x") for n in last):
        parent_glob = _glob_escape(prefix) + "*"
        group = re.escape(prefix).replace("\\ ", " ") + r"\d+"
    else:
        parent_glob = "/".join(["*"] * (d + 1))
        group = "^(" + "/".join(["[^/]+"] * (d + 1)) + ")/"
    img_files = [f for p in pairs for f in _raster_files(root / p[0] / p[1])]
    msk_files = [f for p in pairs for f in _raster_files(root / p[0] / p[2])]
    if not img_files:
        raise DataError(f"empty folder: no images in the {img_name}/ folders", root)
    return (f"{parent_glob}/{img_name}/{_suffix_glob(img_files)}",
            f"{parent_glob}/{msk_name}/{_suffix_glob(msk_files) if msk_files else '*'}", group if len(pairs) > 1 else None)


# ---------------------------------------------------------------------------- classes.json
def _read_classes_json(root: Path) -> tuple[Path | None, list[tuple[str, tuple[int, int, int]]], str | None]:
    """Names and colours from a ``classes.json`` (Supervisely/Humans-in-the-Loop style) if there is one."""
    path = root / "classes.json"
    if not path.is_file():
        return None, [], None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return path, [], f"{path.name} is not readable JSON ({exc})"
    entries = data.get("classes", data) if isinstance(data, dict) else data
    out = []
    if isinstance(entries, list):
        for e in entries:
            if not isinstance(e, dict):
                continue
            name = e.get("title") or e.get("name")
            try:
                color = parse_color(e.get("color"))
            except (ValueError, TypeError):
                continue
            if name:
                out.append((str(name), color))
    if not out:
        return path, [], f"{path.name} lists no classes with a name and a colour"
    return path, out, None


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
                    masks: str | None = None, progress: bool = True, overwrite: bool = True) -> InspectReport:
    """Inspect a folder of images and masks; write a draft dataset YAML to ``out_yaml`` when given.

    ``images``/``masks`` (folder or glob patterns relative to ``directory``) override the layout
    discovery. Raises :class:`DataError` when the folder is missing, empty, or has no masks at all.
    """
    from terraseg._progress import track
    from terraseg.data.spec import _resolve

    root = Path(directory)
    if not root.is_dir():
        raise DataError("not a folder" if root.exists() else "folder not found", root)
    root = root.resolve()
    if (images is None) != (masks is None):
        raise ConfigError("give both images= and masks= patterns, or neither")
    if out_yaml is not None and not overwrite and Path(out_yaml).exists():
        raise DataError("file exists; choose another name or allow overwriting (--force)", out_yaml)
    group = None
    if images is None:
        images, masks, group = _find_layout(root)
    img_map = _resolve(root, [images], "images")
    msk_map = _resolve(root, [masks], "masks")  # type: ignore[list-item]
    if not img_map:
        raise DataError(f"empty folder: no images match {images!r}", root)
    if not msk_map:
        raise DataError(f"no masks match {masks!r}", root)

    report = InspectReport(root=root, images_pattern=images, masks_pattern=masks, mask_type="rgb",  # type: ignore[arg-type]
                           n_images=len(img_map), n_masks=len(msk_map), n_pairs=0, bands=None, group=group)
    report.images_without_masks = sorted(p for k, p in img_map.items() if k not in msk_map)
    report.masks_without_images = sorted(p for k, p in msk_map.items() if k not in img_map)
    pairs = sorted(((img_map[k], msk_map[k]) for k in img_map if k in msk_map), key=lambda t: str(t[0]))
    report.n_pairs = len(pairs)

    totals: dict[tuple, int] = {}
    band_counts: Counter = Counter()
    mask_kinds: Counter = Counter()
    unreadable_images = set()
    for img in track(sorted(img_map.values()), description="checking images") if progress else sorted(img_map.values()):
        problem = _check_readable(img)
        if problem:
            report.unreadable.append((img, problem))
            unreadable_images.add(img)
        else:
            band_counts[raster_info(img).count] += 1
    it = track(pairs, total=len(pairs), description="reading masks") if progress else pairs
    for img, msk in it:
        try:
            arr = read_raster(msk)
        except TerrasegError as exc:
            report.unreadable.append((msk, str(exc).split(": ", 1)[-1] if exc.path else str(exc)))
            continue
        if img not in unreadable_images:
            info = raster_info(img)
            if (info.height, info.width) != arr.shape[:2]:
                report.size_mismatches.append((img, msk, (info.width, info.height), (arr.shape[1], arr.shape[0])))
        if arr.shape[-1] >= 3:
            mask_kinds["rgb"] += 1
            vals, cnts = count_values(pack_rgb(arr))
            keys = [unpack_color(v) for v in vals]
        else:
            mask_kinds["index"] += 1
            vals, cnts = count_values(arr[:, :, 0])
            keys = [(int(v),) for v in vals]
        for k, c in zip(keys, cnts):
            totals[k] = totals.get(k, 0) + int(c)
    if len(mask_kinds) > 1:
        report.warnings.append(f"{mask_kinds['rgb']} mask(s) are RGB colour masks and {mask_kinds['index']} are "
                               "single-band index masks; use one kind")
    report.mask_type = mask_kinds.most_common(1)[0][0] if mask_kinds else "rgb"
    if band_counts:
        report.bands = band_counts.most_common(1)[0][0]
        if len(band_counts) > 1:
            report.warnings.append("images have different band counts: " + ", ".join(
                f"{n} image(s) with {b} band(s)" for b, n in sorted(band_counts.items())))
    grand = sum(totals.values()) or 1
    report.palette = [PaletteEntry(k, n, n / grand) for k, n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
                      if len(k) == (3 if report.mask_type == "rgb" else 1)]

    _name_classes(report)
    _summarise_problems(report)
    report.draft = draft_spec(report)
    if out_yaml is not None:
        report.yaml_path = write_draft(report, out_yaml)
    return report


def _name_classes(report: InspectReport) -> None:
    path, named, problem = _read_classes_json(report.root)
    report.classes_json = path
    if problem:
        report.warnings.append(problem)
    json_colors = {c: n for n, c in named}
    own = _existing_yaml_names(report.root, report.mask_type)  # a dataset.yaml already in the folder
    found = {e.color for e in report.palette}
    k = 0
    for e in report.palette:
        if report.mask_type == "rgb" and e.color == (0, 0, 0):
            e.name, e.source = None, "ignored"
        elif report.mask_type == "index" and e.color == (255,):
            e.name, e.source = None, "ignored"
        elif e.color in own:
            e.name, e.source = own[e.color], "dataset.yaml"
            k += 1
        elif e.color in json_colors:
            e.name, e.source = json_colors[e.color], path.name  # type: ignore[union-attr]
            k += 1
        else:
            e.name, e.source = (f"class_{k}" if report.mask_type == "rgb" else f"class_{e.color[0]}"), "generated"
            k += 1
    if named and report.mask_type == "rgb":
        missing = [(n, c) for n, c in named if c not in found]
        unnamed = [e for e in report.palette if e.source == "generated"]
        if missing or unnamed:
            parts = []
            if missing:
                parts.append(f"it names {len(missing)} colour(s) never found in the masks ("
                             + ", ".join(f"{n} {to_hex(c)}" for n, c in missing) + ")")
            if unnamed:
                parts.append(f"{len(unnamed)} mask colour(s) are not in it ("
                             + ", ".join(e.label for e in unnamed) + ")")
            report.warnings.append(f"{path.name} disagrees with the masks: " + "; ".join(parts)  # type: ignore[union-attr]
                                   + "; the draft YAML uses the colours found in the masks")
    black = next((e for e in report.palette if e.source == "ignored"), None)
    if black is not None:
        report.warnings.append(f"{black.pixels} pixel(s) ({100 * black.share:.2f} %) are {black.label}, a colour no "
                               "class owns; the draft YAML ignores them")


def _existing_yaml_names(root: Path, mask_type: str) -> dict[tuple, str]:
    """``{colour or (value,): class name}`` from a valid ``dataset.yaml`` in ``root`` (else empty)."""
    path = root / "dataset.yaml"
    if not path.is_file():
        return {}
    try:
        from terraseg.data.spec import load_spec

        spec = load_spec(path)
    except TerrasegError:
        return {}
    if spec.mask_type != mask_type:
        return {}
    if mask_type == "rgb":
        return {tuple(c.color): c.name for c in spec.classes}
    return {(v,): c.name for c, v in zip(spec.classes, spec.class_values)}


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


# ---------------------------------------------------------------------------- draft YAML
def draft_spec(report: InspectReport) -> dict[str, Any]:
    """The draft dataset mapping (root is filled in relative to the YAML when written)."""
    d: dict[str, Any] = {"name": report.root.name, "root": str(report.root), "images": report.images_pattern,
                         "masks": report.masks_pattern, "bands": report.bands or 3}
    classes = [e for e in report.palette if e.name is not None]
    if report.mask_type == "rgb":
        d["classes"] = [{"name": e.name, "color": e.label} for e in classes]
        ignored = [e.label for e in report.palette if e.name is None]
    else:
        d["classes"] = [{"name": e.name, "value": int(e.color[0])} for e in classes]
        ignored = [int(e.color[0]) for e in report.palette if e.name is None]
    if ignored:
        d["ignore"] = ignored
    d["ignore_index"] = 255
    if report.group:
        d["group"] = report.group
    return d


def write_draft(report: InspectReport, out_yaml: str | Path) -> Path:
    """Write the draft YAML (root relative to the YAML's folder), with the pixel shares as comments."""
    from terraseg._io import write_text_atomic
    from terraseg.data.spec import _relpath, dump_yaml, spec_from_dict

    out = Path(out_yaml)
    d = dict(report.draft)
    d["root"] = _relpath(report.root, out.parent.resolve())
    spec_from_dict(dict(d, root=str(report.root)), base_dir=report.root)  # the draft must be valid
    lines = dump_yaml(d).splitlines()
    shares = {e.label: e for e in report.palette}
    out_lines = [f"# Draft dataset description written by `terraseg data inspect` from {report.root}.",
                 "# Check the class names: colours not named by classes.json or dataset.yaml are called class_N.",
                 f"# {report.n_pairs} image/mask pairs; shares are of all mask pixels."]
    for line in lines:
        m = re.search(r"(?:color|value): '?(#[0-9A-F]{6}|\d+)'?", line) if "name:" in line else None
        if m and m.group(1) in shares:
            e = shares[m.group(1)]
            line = f"{line}  # {100 * e.share:.2f} % ({e.pixels} px)"
        out_lines.append(line)
    return write_text_atomic(out, "\n".join(out_lines) + "\n")


__all__ = ["InspectReport", "PaletteEntry", "inspect_dataset", "draft_spec", "write_draft"]
