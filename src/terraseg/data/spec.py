"""Dataset description: a YAML file saying what the classes are and where images and masks live.

Example (paths are relative to the YAML's folder, or to ``root`` when given; spaces are fine)::

    name: dubai
    root: ../../shared/datasets/dubai-mbrsc
    images: "Tile */images/*.jpg"      # a folder, a glob, or a list of them
    masks: "Tile */masks/*.png"
    bands: 3                           # or band indexes to select, e.g. [4, 3, 2]
    classes:
      - {name: Building, color: "#3C1098"}
      - {name: Land, color: [132, 41, 246]}
    ignore: [[0, 0, 0]]                # colours (RGB masks) or values (index masks) to ignore
    ignore_index: 255
    group: 'Tile \\d+'                  # regex on the image path: samples of one group stay together
    split: splits/dubai.json           # optional default split file

Every key, its type, default and meaning is in ``terraseg.schemas.dataset.DatasetFile`` (and the
shipped JSON Schema ``terraseg/schemas/dataset.schema.json``). Images and masks pair as described
in ``terraseg.data.pairing``. Index masks use ``value:`` instead of ``color:`` per class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from terraseg.data.pairing import group_of as _group_of
from terraseg.data.pairing import relkey as _relkey
from terraseg.data.pairing import resolve_patterns as _resolve
from terraseg.data.palette import Color, colorize, mask_to_index, to_hex
from terraseg.data.raster import RASTER_SUFFIXES, RasterInfo, raster_info, read_raster
from terraseg.errors import ConfigError, DataError


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
    bands: int = 3  # band count (after band_indexes selects bands)
    band_indexes: list[int] | None = None  # 1-based bands to read (GDAL order); None = all
    resolution: float | None = None  # metres per pixel for images without georeferencing
    nodata: float | None = None
    group: str | None = None
    split_file: Path | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    augment: list[dict[str, Any]] | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    color_tolerance: int = 0  # largest per-channel difference to a class colour that still matches
    color_snap: float | None = None  # snap to the nearest class colour within this Euclidean RGB distance
    mask_channel: int | None = None  # class values in this channel of an RGB mask
    max_ignored_share: float = 0.5  # refuse a description that ignores more of the mask pixels

    @property
    def band_count(self) -> int:
        return self.bands

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
            raise DataError(f"no images found for images: {', '.join(repr(p) for p in self.images)}", self.path or self.root)
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
        """The image ``(H, W, bands)`` (or a window of it): ``band_indexes`` selected, checked against ``bands``."""
        path = sample.image if isinstance(sample, Sample) else Path(sample)
        if self.band_indexes is not None:  # the source selects them (and names file and selection on error)
            return read_raster(path, window, bands=self.band_indexes)
        img = read_raster(path, window)
        if img.shape[-1] != self.bands:
            if img.shape[-1] == 4 and self.bands == 3 and path.suffix.lower() in (".png", ".webp"):
                img = img[:, :, :3]  # RGBA screenshot-style PNG: drop alpha
            else:
                raise DataError(f"image has {img.shape[-1]} band(s) but the dataset says bands: {self.bands}",
                                path)
        return img

    def mask_to_index(self, mask: np.ndarray, path: str | Path | None = None) -> tuple[np.ndarray, dict]:
        """A mask as read from disk -> ``(class index (H, W) uint8, {unknown colour/value: pixels})``: the one rule
        (:func:`terraseg.data.palette.mask_to_index`) of convert-masks, stats, training and evaluation."""
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
        d["bands"] = list(self.band_indexes) if self.band_indexes is not None else self.bands
        if self.resolution is not None:
            d["resolution"] = self.resolution
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
        for key, default in (("color_tolerance", 0), ("color_snap", None), ("mask_channel", None),
                             ("max_ignored_share", 0.5)):
            if getattr(self, key) != default:
                d[key] = getattr(self, key)
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
    from terraseg.schemas._validate import read_yaml

    path = Path(path)
    if path.is_dir():
        path = path / "dataset.yaml"
    data = read_yaml(path, what="dataset description")
    return spec_from_dict(data, base_dir=path.resolve().parent, path=path)


def spec_from_dict(data: Any, base_dir: str | Path = ".", path: str | Path | None = None) -> DatasetSpec:
    """Validate a dataset mapping (``DatasetFile``); relative paths are taken from ``base_dir``."""
    from terraseg.schemas._validate import validate
    from terraseg.schemas.dataset import DatasetFile

    if not isinstance(data, dict):
        raise ConfigError("a dataset description must be a YAML mapping with 'images' and 'classes'", path)
    f = validate(DatasetFile, data, path)
    base_dir = Path(base_dir)
    root = (base_dir / f.root).resolve() if f.root else base_dir.resolve()
    if not root.is_dir():
        raise ConfigError(f"key 'root': folder {root} does not exist", path)
    return DatasetSpec(
        root=root, classes=[ClassDef(c.name, c.color, c.value) for c in f.classes],  # type: ignore[arg-type]
        images=[p.strip() for p in f.images], masks=[p.strip() for p in f.masks or []],
        name=str(f.name or (Path(path).stem if path is not None else "dataset")),
        path=Path(path) if path is not None else None, mask_type=str(f.mask_type),
        ignore_colors=list(f.ignore_colors), ignore_values=list(f.ignore_values), ignore_index=f.ignore_index,
        unknown=f.unknown, bands=f.band_count, band_indexes=list(f.bands) if isinstance(f.bands, list) else None,
        resolution=f.resolution, nodata=f.nodata, group=f.group,
        split_file=(base_dir / f.split).resolve() if f.split else None, mean=f.mean, std=f.std,
        augment=f.augment, description=f.description, extra=f.extra, color_tolerance=f.color_tolerance,
        color_snap=f.color_snap, mask_channel=f.mask_channel, max_ignored_share=f.max_ignored_share,
    )


# -------------------------------------------------------------------- helpers
def _relpath(p: Path, base: Path) -> str:
    import os

    try:
        return Path(os.path.relpath(Path(p).resolve(), Path(base).resolve())).as_posix()
    except ValueError:  # different drives on Windows
        return Path(p).resolve().as_posix()


def _describe_unknown(unknown: dict) -> str:
    items = sorted(unknown.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{to_hex(k) if isinstance(k, tuple) else k} ({n} px)" for k, n in items[:3])
    more = f" and {len(items) - 3} more" if len(items) > 3 else ""
    what = "colour" if items and isinstance(items[0][0], tuple) else "value"
    return f"{len(items)} {what}(s) {shown}{more}"
