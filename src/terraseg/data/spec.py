"""Dataset description: a YAML file saying what the classes are and where images and masks live.

Example (paths are relative to the YAML's folder, or to ``root`` when given; spaces are fine)::

    name: dubai
    root: ../../shared/datasets/dubai-mbrsc
    images: "Tile */images/*.jpg"      # a folder, a glob, or a list of them
    masks: "Tile */masks/*.png"
    bands: 3
    classes:
      - {name: Building, color: "#3C1098"}
      - {name: Land, color: [132, 41, 246]}
    ignore: [[0, 0, 0]]                # colours (RGB masks) or values (index masks) to ignore
    ignore_index: 255
    group: 'Tile \\d+'                  # regex on the image path: samples of one group stay together
    split: splits/dubai.json           # optional default split file

Images and masks are paired by what the wildcards match (``Tile 1/images/image_part_001.jpg`` and
``Tile 1/masks/image_part_001.png`` both match ``("1", "image_part_001")``); for a folder, by the
path below it without the suffix. Index masks use ``value:`` instead of ``color:`` per class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from terraseg.data.palette import Color, colorize, default_colors, mask_to_index, parse_color, to_hex
from terraseg.data.raster import RASTER_SUFFIXES, RasterInfo, raster_info, read_raster
from terraseg.errors import ConfigError, DataError

KNOWN_KEYS = {
    "name", "description", "root", "images", "masks", "classes", "ignore", "ignore_colors", "ignore_values",
    "ignore_index", "mask_type", "unknown", "bands", "nodata", "group", "split", "mean", "std", "augment",
    "extra",
}
# Interim (issue 17) until the pydantic schema of the `config` branch lands: mask-reading keys.
KNOWN_KEYS |= {"color_tolerance", "color_snap", "mask_channel", "max_ignored_share"}
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class ClassDef:
    """One class: its name and its mask colour (RGB masks) or mask value (index masks)."""

    name: str
    color: Color
    value: int | None = None


@dataclass(frozen=True)
class Sample:
    """One image (and its mask, when there is one). ``key`` is the image path relative to the root."""

    key: str
    image: Path
    mask: Path | None
    group: str

    @property
    def name(self) -> str:
        return Path(self.key).stem


@dataclass
class DatasetSpec:
    """A validated dataset description (see the module docstring for the YAML format)."""

    root: Path
    classes: list[ClassDef]
    images: list[str]
    masks: list[str] = field(default_factory=list)
    name: str = "dataset"
    path: Path | None = None
    mask_type: str = "rgb"
    ignore_colors: list[Color] = field(default_factory=list)
    ignore_values: list[int] = field(default_factory=list)
    ignore_index: int = 255
    unknown: str = "ignore"  # what read_pair does with mask colours/values no class owns: ignore | error
    bands: int = 3
    nodata: float | None = None
    group: str | None = None
    split_file: Path | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    augment: list[dict[str, Any]] | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # interim (issue 17) mask-reading keys, see terraseg.data.palette.mask_to_index
    color_tolerance: int = 0
    color_snap: float | None = None
    mask_channel: int | None = None
    max_ignored_share: float = 0.5

    # ---------------------------------------------------------------- classes
    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def colors(self) -> list[Color]:
        return [c.color for c in self.classes]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_values(self) -> list[int]:
        return [c.value if c.value is not None else i for i, c in enumerate(self.classes)]

    # ---------------------------------------------------------------- files
    @cached_property
    def _pairs(self) -> tuple[list[Sample], list[Path]]:
        images = _resolve(self.root, self.images, "images")
        if not images:
            raise DataError(f"no images found for images: {_show(self.images)}", self.path or self.root)
        masks = _resolve(self.root, self.masks, "masks") if self.masks else {}
        group_re = re.compile(self.group) if self.group else None
        samples = []
        for key, img in sorted(images.items(), key=lambda kv: str(kv[1])):
            rel = _relkey(img, self.root)
            samples.append(Sample(rel, img, masks.get(key), _group_of(rel, group_re)))
        samples.sort(key=lambda s: s.key)
        orphans = sorted(p for k, p in masks.items() if k not in images)
        return samples, orphans

    def items(self) -> list[Sample]:
        """Every image with its mask (``None`` when it has none), sorted by key."""
        return list(self._pairs[0])

    def labelled(self) -> list[Sample]:
        """The samples that have a mask."""
        return [s for s in self._pairs[0] if s.mask is not None]

    def unlabelled(self) -> list[Sample]:
        return [s for s in self._pairs[0] if s.mask is None]

    def orphan_masks(self) -> list[Path]:
        """Masks without an image."""
        return list(self._pairs[1])

    def sample(self, key: str) -> Sample:
        for s in self._pairs[0]:
            if s.key == key:
                return s
        raise DataError(f"no image with key {key!r} in the dataset", self.path or self.root)

    def select(self, keys: Iterable[str], what: str = "split") -> list[Sample]:
        """Samples for ``keys`` (e.g. one list of a split file), in the given order."""
        by_key = {s.key: s for s in self._pairs[0]}
        out, missing = [], []
        for k in keys:
            (out.append(by_key[k]) if k in by_key else missing.append(k))
        if missing:
            raise DataError(f"{len(missing)} image(s) of the {what} are not in the dataset, e.g. {missing[0]!r}",
                            self.path or self.root)
        return out

    def split_samples(self, name: str, split_file: str | Path | None = None) -> list[Sample]:
        """The samples of one list (``train``, ``val``, ``test``, ``holdout``) of a split file.

        Uses ``split_file`` or the dataset's ``split:`` key.
        """
        from terraseg.data.split import load_split

        path = Path(split_file) if split_file is not None else self.split_file
        if path is None:
            raise ConfigError("no split file given and the dataset has no 'split' key", self.path)
        split = load_split(path)
        if name not in split:
            raise ConfigError(f"split file has no list {name!r} (it has {', '.join(split)})", path)
        return self.select(split[name], what=f"{name!r} list of {path}")

    # ---------------------------------------------------------------- reading
    def info(self, sample: Sample) -> RasterInfo:
        cache = self.__dict__.setdefault("_info_cache", {})
        if sample.image not in cache:
            cache[sample.image] = raster_info(sample.image)
        return cache[sample.image]

    def read_image(self, sample: Sample | str | Path, window=None) -> np.ndarray:
        """The image ``(H, W, bands)`` (or a window of it), checked against ``bands``."""
        path = sample.image if isinstance(sample, Sample) else Path(sample)
        img = read_raster(path, window)
        if img.shape[-1] != self.bands:
            if img.shape[-1] == 4 and self.bands == 3 and path.suffix.lower() in (".png", ".webp"):
                img = img[:, :, :3]  # RGBA screenshot-style PNG: drop alpha
            else:
                raise DataError(f"image has {img.shape[-1]} band(s) but the dataset says bands: {self.bands}",
                                path)
        return img

    def mask_to_index(self, mask: np.ndarray, path: str | Path | None = None) -> tuple[np.ndarray, dict]:
        """A mask as read from disk -> ``(class index (H, W) uint8, {unknown colour/value: pixels})``."""
        return mask_to_index(mask, mask_type=self.mask_type, colors=self.colors, class_values=self.class_values,
                             ignore_colors=self.ignore_colors, ignore_values=self.ignore_values,
                             ignore_index=self.ignore_index, tolerance=self.color_tolerance, snap=self.color_snap,
                             channel=self.mask_channel, path=path)

    def read_mask(self, sample: Sample | str | Path, window=None) -> tuple[np.ndarray, dict]:
        """``(class index mask (H, W) uint8, {unknown colour/value: pixels})`` of a sample's mask."""
        path = sample.mask if isinstance(sample, Sample) else Path(sample)
        if path is None:
            raise DataError("image has no mask", sample.image if isinstance(sample, Sample) else None)
        raw = read_raster(path, window, palette_indices=self.mask_type == "index")
        index, unknown = self.mask_to_index(raw, path)
        if unknown and self.unknown == "error":
            raise DataError(f"mask has {_describe_unknown(unknown)} that no class owns; add them to 'classes' "
                            "or 'ignore' in the dataset YAML", path)
        return index, unknown

    def read_pair(self, sample: Sample, window=None) -> tuple[np.ndarray, np.ndarray]:
        """``(image (H, W, bands), mask (H, W) uint8 class indices)``; unknown colours become ignore.

        Checks that mask and image have the same size; nodata pixels of the image are ignored.
        """
        image = self.read_image(sample, window)
        mask, _ = self.read_mask(sample, window)
        if mask.shape != image.shape[:2]:
            raise DataError(f"mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                            f"{sample.image.name} is {image.shape[1]}x{image.shape[0]}", sample.mask)
        nodata = self.nodata_value(sample)
        if nodata is not None:
            nd = np.all(image == nodata, axis=-1) if not np.isnan(nodata) else np.all(np.isnan(image), axis=-1)
            if nd.any():
                mask = mask.copy()
                mask[nd] = self.ignore_index
        return image, mask

    def nodata_value(self, sample: Sample) -> float | None:
        if self.nodata is not None:
            return float(self.nodata)
        if sample.image.suffix.lower() in RASTER_SUFFIXES - {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}:
            return self.info(sample).nodata
        return None

    def colorize(self, index: np.ndarray) -> np.ndarray:
        ignore = self.ignore_colors[0] if self.ignore_colors else (0, 0, 0)
        return colorize(index, self.colors, ignore)

    # ---------------------------------------------------------------- writing
    def to_dict(self, relative_to: str | Path | None = None) -> dict[str, Any]:
        """The YAML mapping for this spec; paths relative to ``relative_to`` (default: the root)."""
        base = Path(relative_to) if relative_to is not None else None
        d: dict[str, Any] = {"name": self.name}
        if self.description:
            d["description"] = self.description
        if base is not None:
            d["root"] = _relpath(self.root, base)
        d["images"] = self.images[0] if len(self.images) == 1 else list(self.images)
        if self.masks:
            d["masks"] = self.masks[0] if len(self.masks) == 1 else list(self.masks)
        d["bands"] = self.bands
        if self.nodata is not None:
            d["nodata"] = self.nodata
        if self.mask_type == "rgb":
            d["classes"] = [{"name": c.name, "color": to_hex(c.color)} for c in self.classes]
            if self.ignore_colors:
                d["ignore"] = [to_hex(c) for c in self.ignore_colors]
        else:
            d["classes"] = [{"name": c.name, "value": v, "color": to_hex(c.color)}
                            for c, v in zip(self.classes, self.class_values)]
            if self.ignore_values:
                d["ignore"] = list(self.ignore_values)
        d["ignore_index"] = self.ignore_index
        if self.unknown != "ignore":
            d["unknown"] = self.unknown
        if self.group:
            d["group"] = self.group
        if self.split_file is not None:
            d["split"] = _relpath(self.split_file, base) if base is not None else str(self.split_file)
        if self.mean is not None:
            d["mean"] = [float(v) for v in self.mean]
            d["std"] = [float(v) for v in (self.std or [])]
        if self.augment:
            d["augment"] = self.augment
        if self.extra:
            d["extra"] = self.extra
        # interim (issue 17) mask-reading keys
        for key, default in (("color_tolerance", 0), ("color_snap", None), ("mask_channel", None),
                             ("max_ignored_share", 0.5)):
            if getattr(self, key) != default:
                d[key] = getattr(self, key)
        return d

    def save(self, path: str | Path) -> Path:
        """Write this spec as YAML (atomically), paths relative to the YAML's folder."""
        from terraseg._io import write_text_atomic

        path = Path(path)
        text = dump_yaml(self.to_dict(relative_to=path.parent.resolve()))
        return write_text_atomic(path, text)


# -------------------------------------------------------------------- loading
def dump_yaml(d: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(d, sort_keys=False, allow_unicode=True, default_flow_style=None, width=110)


def load_spec(path: str | Path) -> DatasetSpec:
    """Read and validate a dataset YAML (or a folder holding ``dataset.yaml``)."""
    import yaml

    path = Path(path)
    if path.is_dir():
        path = path / "dataset.yaml"
    if not path.is_file():
        raise ConfigError("dataset description not found", path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"not valid YAML{where} ({getattr(exc, 'problem', None) or exc})", path) from None
    except UnicodeDecodeError:
        raise ConfigError("not a text file", path) from None
    if not isinstance(data, dict):
        raise ConfigError("a dataset description must be a YAML mapping with 'images' and 'classes'", path)
    return spec_from_dict(data, base_dir=path.resolve().parent, path=path)


def spec_from_dict(data: dict[str, Any], base_dir: str | Path = ".", path: str | Path | None = None) -> DatasetSpec:
    """Validate a dataset mapping; relative paths are taken from ``base_dir``."""
    where = path if path is not None else None

    def fail(key: str, problem: str):
        raise ConfigError(f"key '{key}': {problem}", where)

    unknown_keys = sorted(set(data) - KNOWN_KEYS)
    if unknown_keys:
        fail(unknown_keys[0], f"unknown key (known keys: {', '.join(sorted(KNOWN_KEYS))})")
    for key in ("images", "classes"):
        if data.get(key) in (None, "", []):
            fail(key, "missing; it is required")

    base_dir = Path(base_dir)
    root = data.get("root")
    if root is not None and not isinstance(root, str):
        fail("root", "must be a path")
    root_path = (base_dir / root).resolve() if root else base_dir.resolve()
    if not root_path.is_dir():
        fail("root", f"folder {root_path} does not exist")

    def patterns(key: str) -> list[str]:
        v = data.get(key)
        if v is None:
            return []
        vs = [v] if isinstance(v, str) else v
        if not isinstance(vs, list) or not vs or not all(isinstance(x, str) and x.strip() for x in vs):
            fail(key, "must be a folder or glob pattern (or a list of them)")
        return [x.strip() for x in vs]

    images, masks = patterns("images"), patterns("masks")

    # ---- classes
    raw_classes = data["classes"]
    if isinstance(raw_classes, dict):
        raw_classes = [{"name": k, **(v if isinstance(v, dict) else
                                      {"value": v} if isinstance(v, int) else {"color": v})}
                       for k, v in raw_classes.items()]
    if not isinstance(raw_classes, list):
        fail("classes", "must be a list of {name, color} or {name, value} entries")
    names: list[str] = []
    colors: list[Color | None] = []
    values: list[int | None] = []
    for i, c in enumerate(raw_classes):
        k = f"classes[{i}]"
        if not isinstance(c, dict):
            fail(k, "must be a mapping such as {name: Water, color: '#E2A929'} or {name: Water, value: 1}")
        bad = set(c) - {"name", "color", "value"}
        if bad:
            fail(f"{k}.{sorted(bad)[0]}", "unknown key (a class has name, color and/or value)")
        name = c.get("name")
        if name is None or not str(name).strip():
            fail(f"{k}.name", "missing; every class needs a name")
        name = str(name).strip()
        if name in names:
            fail(f"{k}.name", f"class name {name!r} appears twice")
        names.append(name)
        if c.get("color") is not None:
            try:
                colors.append(parse_color(c["color"]))
            except ValueError as exc:
                fail(f"{k}.color", str(exc))
        else:
            colors.append(None)
        v = c.get("value")
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            fail(f"{k}.value", f"{v!r} is not a non-negative integer")
        values.append(v)
    if not names:
        fail("classes", "is empty")

    mask_type = data.get("mask_type")
    if mask_type is None:
        if all(v is not None for v in values):
            mask_type = "index"
        elif all(c is not None for c in colors):
            mask_type = "rgb"
        else:
            missing = next(i for i in range(len(names)) if colors[i] is None and values[i] is None) \
                if any(colors[i] is None and values[i] is None for i in range(len(names))) else \
                next(i for i in range(len(names)) if colors[i] is None)
            fail(f"classes[{missing}]", "needs a 'color' (RGB masks) or every class needs a 'value' (index masks)")
    if mask_type not in ("rgb", "index"):
        fail("mask_type", f"{mask_type!r} is not 'rgb' or 'index'")
    if mask_type == "rgb":
        for i, c in enumerate(colors):
            if c is None:
                fail(f"classes[{i}].color", "missing; colour masks need a colour per class")
        dup = _first_dup(colors)
        if dup is not None:
            fail(f"classes[{dup}].color", f"colour {to_hex(colors[dup])} is used by two classes")
    else:
        for i, v in enumerate(values):
            if v is None:
                fail(f"classes[{i}].value", "missing; index masks need a value per class")
        dup = _first_dup(values)
        if dup is not None:
            fail(f"classes[{dup}].value", f"value {values[dup]} is used by two classes")
        gen = iter(default_colors(len(names)))
        colors = [c if c is not None else next(gen) for c in colors]
    classes = [ClassDef(n, c, v) for n, c, v in zip(names, colors, values)]  # type: ignore[arg-type]

    # ---- ignore
    ignore_colors: list[Color] = []
    ignore_values: list[int] = []
    raw_ignore = data.get("ignore")
    if raw_ignore is not None and not isinstance(raw_ignore, list):
        raw_ignore = [raw_ignore]
    if raw_ignore and isinstance(raw_ignore, list) and len(raw_ignore) == 3 and all(
            isinstance(x, int) for x in raw_ignore) and mask_type == "rgb":
        raw_ignore = [raw_ignore]  # ignore: [0, 0, 0] means one colour
    for i, v in enumerate(raw_ignore or []):
        if mask_type == "rgb":
            try:
                ignore_colors.append(parse_color(v))
            except ValueError as exc:
                fail(f"ignore[{i}]", str(exc))
        else:
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                fail(f"ignore[{i}]", f"{v!r} is not a mask value (index masks ignore values, not colours)")
            ignore_values.append(v)
    for key, target, parse in (("ignore_colors", ignore_colors, parse_color), ("ignore_values", ignore_values, int)):
        for i, v in enumerate(data.get(key) or []):
            try:
                target.append(parse(v))
            except (TypeError, ValueError) as exc:
                fail(f"{key}[{i}]", str(exc))
    for c in ignore_colors:
        if c in colors:
            fail("ignore", f"colour {to_hex(c)} belongs to class {names[colors.index(c)]!r}")

    ignore_index = data.get("ignore_index", 255)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int) or not 0 <= ignore_index <= 255:
        fail("ignore_index", f"{ignore_index!r} is not an integer 0-255")
    if ignore_index < len(names):
        fail("ignore_index", f"{ignore_index} is a class index (there are {len(names)} classes); use 255")
    if len(names) > 255:
        fail("classes", f"{len(names)} classes; at most 255 are supported")

    unknown = data.get("unknown", "ignore")
    if unknown not in ("ignore", "error"):
        fail("unknown", f"{unknown!r} is not 'ignore' or 'error'")

    bands = data.get("bands", 3)
    if isinstance(bands, bool) or not isinstance(bands, int) or bands < 1:
        fail("bands", f"{bands!r} is not a positive integer")
    nodata = data.get("nodata")
    if nodata is not None and (isinstance(nodata, bool) or not isinstance(nodata, (int, float))):
        fail("nodata", f"{nodata!r} is not a number")

    group = data.get("group")
    if group is not None:
        if not isinstance(group, str) or not group:
            fail("group", "must be a regular expression such as 'Tile \\d+'")
        try:
            re.compile(group)
        except re.error as exc:
            fail("group", f"is not a valid regular expression ({exc})")

    split = data.get("split")
    split_file = None
    if split is not None:
        if not isinstance(split, str):
            fail("split", "must be the path of a split JSON file")
        split_file = (base_dir / split).resolve()

    mean, std = data.get("mean"), data.get("std")
    if (mean is None) != (std is None):
        fail("std" if std is None else "mean", "mean and std go together; give both or neither")
    for key, vals in (("mean", mean), ("std", std)):
        if vals is None:
            continue
        if not isinstance(vals, list) or len(vals) != bands or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in vals):
            fail(key, f"must be a list of {bands} numbers (one per band)")
        if key == "std" and any(x <= 0 for x in vals):
            fail(key, "every std must be > 0")

    augment = data.get("augment")
    if augment is not None and not isinstance(augment, list):
        fail("augment", "must be a list of transforms such as [{name: HorizontalFlip, p: 0.5}]")
    extra = data.get("extra") or {}
    if not isinstance(extra, dict):
        fail("extra", "must be a mapping")

    interim = _interim_keys(data, fail)  # issue 17, until the pydantic schema lands
    name = data.get("name") or (Path(path).stem if path is not None else "dataset")
    return DatasetSpec(**interim,
        root=root_path, classes=classes, images=images, masks=masks, name=str(name),
        path=Path(path) if path is not None else None, mask_type=mask_type, ignore_colors=ignore_colors,
        ignore_values=ignore_values, ignore_index=ignore_index, unknown=unknown, bands=bands,
        nodata=nodata, group=group, split_file=split_file,
        mean=[float(x) for x in mean] if mean is not None else None,
        std=[float(x) for x in std] if std is not None else None, augment=augment,
        description=str(data.get("description") or ""), extra=extra,
    )


def _interim_keys(data: dict[str, Any], fail) -> dict[str, Any]:
    """color_tolerance, color_snap, mask_channel, max_ignored_share (issue 17; replaced by the pydantic schema)."""
    out: dict[str, Any] = {}
    tol = data.get("color_tolerance", 0)
    if isinstance(tol, bool) or not isinstance(tol, int) or tol < 0:
        fail("color_tolerance", f"{tol!r} is not an integer >= 0")
    out["color_tolerance"] = tol
    snap = data.get("color_snap")
    if snap is not None and (isinstance(snap, bool) or not isinstance(snap, (int, float)) or snap < 0):
        fail("color_snap", f"{snap!r} is not a distance >= 0")
    out["color_snap"] = None if snap is None else float(snap)
    ch = data.get("mask_channel")
    if ch is not None and (isinstance(ch, bool) or not isinstance(ch, int) or not 0 <= ch <= 2):
        fail("mask_channel", f"{ch!r} is not 0, 1 or 2")
    out["mask_channel"] = ch
    share = data.get("max_ignored_share", 0.5)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        fail("max_ignored_share", f"{share!r} is not a share between 0 and 1")
    out["max_ignored_share"] = float(share)
    return out


# -------------------------------------------------------------------- helpers
def _first_dup(items: Sequence) -> int | None:
    seen = set()
    for i, x in enumerate(items):
        if x in seen:
            return i
        seen.add(x)
    return None


def _show(patterns: list[str]) -> str:
    return ", ".join(repr(p) for p in patterns)


def _relpath(p: Path, base: Path) -> str:
    import os

    try:
        return Path(os.path.relpath(Path(p).resolve(), Path(base).resolve())).as_posix()
    except ValueError:  # different drives on Windows
        return Path(p).resolve().as_posix()


def _relkey(p: Path, root: Path) -> str:
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return p.as_posix()


def _group_of(key: str, group_re: re.Pattern | None) -> str:
    if group_re is None:
        return key
    m = group_re.search(key)
    if m is None:
        return key
    return m.group(1) if m.groups() and m.group(1) is not None else m.group(0)


def _glob_regex(pattern: str) -> re.Pattern:
    """Translate a glob into a regex capturing each wildcard (``**`` captures whole folders)."""
    parts = pattern.split("/")
    out = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append("(.*)" if last else "((?:[^/]+/)*)")
            continue
        seg, j = [], 0
        while j < len(part):
            ch = part[j]
            if ch == "*":
                seg.append("([^/]*)")
            elif ch == "?":
                seg.append("([^/])")
            elif ch == "[":
                end = part.find("]", j + 2 if j + 1 < len(part) and part[j + 1] in "!^" else j + 1)
                if end == -1:
                    seg.append(re.escape(ch))
                else:
                    body = part[j + 1:end]
                    if body.startswith("!"):
                        body = "^" + body[1:]
                    seg.append("([" + body.replace("\\", "\\\\") + "])")
                    j = end
            else:
                seg.append(re.escape(ch))
            j += 1
        out.append("".join(seg) + ("" if last else "/"))
    return re.compile("^" + "".join(out) + "$")


def _pair_key(captures: Sequence[str]) -> tuple[str, ...]:
    comps: list[str] = []
    for c in captures:
        comps.extend(x for x in c.split("/") if x)
    if comps:
        last = comps[-1]
        suffix = Path(last).suffix
        if suffix.lower() in RASTER_SUFFIXES:
            comps[-1] = last[: -len(suffix)]
    return tuple(comps)


def _resolve(root: Path, patterns: list[str], what: str) -> dict[tuple[str, ...], Path]:
    """``{pairing key: file}`` for a list of folder/glob patterns relative to ``root``."""
    found: dict[tuple[str, ...], Path] = {}
    for pattern in patterns:
        pat = pattern.replace("\\", "/").rstrip("/")
        is_glob = bool(_GLOB_CHARS.search(pat))
        if not is_glob:
            target = (root / pat)
            if target.is_file():
                files = [target]
                glob_pat = None
                base = target.parent
            elif target.is_dir():
                base = target
                files = sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES)
                glob_pat = "**/*"
            else:
                raise DataError(f"{what} folder {pat!r} does not exist", target)
            regex = _glob_regex(glob_pat) if glob_pat else None
        else:
            base = root
            files = sorted(p for p in root.glob(pat) if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES)
            regex = _glob_regex(pat)
        for f in files:
            rel = f.relative_to(base).as_posix()
            if any(part.startswith(".") and part not in (".", "..") for part in rel.split("/")):
                continue  # hidden and temporary files
            if regex is None:
                key = _pair_key([Path(rel).name])
            else:
                m = regex.match(rel)
                key = _pair_key(m.groups()) if m else _pair_key([rel])
            if key in found and found[key] != f:
                raise DataError(f"{what} {found[key].name} and {f.name} pair to the same name "
                                f"{'/'.join(key)!r}; keep one of them", f.parent)
            found[key] = f
    return found


def _describe_unknown(unknown: dict) -> str:
    items = sorted(unknown.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{to_hex(k) if isinstance(k, tuple) else k} ({n} px)" for k, n in items[:3])
    more = f" and {len(items) - 3} more" if len(items) > 3 else ""
    what = "colour" if items and isinstance(items[0][0], tuple) else "value"
    return f"{len(items)} {what}(s) {shown}{more}"
