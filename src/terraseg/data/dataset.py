"""The torch ``Dataset`` for training: (image, mask) pairs from a dataset description.

* TIFF/GeoTIFF are read with rasterio, only the crop window, so large scenes are cropped on the fly
  (no pre-chipping needed). JPG/PNG cannot be read by window (Pillow decodes the whole file for any
  crop), so each process keeps decoded image/mask pairs in a least-recently-used cache within a byte
  budget: a JPEG is decoded once per worker, not once per crop.
* Which image and where: ``terraseg.data.crops`` (``sampling`` mode uniform or area, and
  ``class_balance``, the share of crops centred on a pixel of a randomly chosen class).
* Images are normalised per band by ``terraseg.normalisation.Normaliser`` (the dataset's
  ``mean``/``std``, else its defaults; the same rule prediction uses); nodata and non-finite pixels become 0 (the band mean) and ignore in the mask.
* ``augment`` is an albumentations pipeline declared as a list of ``{name: ..., p: ..., ...}``
  mappings (YAML), validated against albumentations. Geometric transforms fill the borders they
  create with 0 in the image and the ignore index in the mask; ``CoarseDropout`` holes become ignore.

Pixel-level transforms (brightness/contrast, noise, blur) see the normalised image mapped to the 0..1
float range albumentations expects: ``u = 0.5 + z / 8`` (one unit = 8 standard deviations, clipped by
albumentations at +-4 std), whatever the raw data type (uint8, uint16, float, any band count).
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from terraseg.data.crops import CropPicker, crop_window
from terraseg.data.raster import uses_pillow
from terraseg.errors import ConfigError, DataError
from terraseg.normalisation import Normaliser

#: Half-range (in standard deviations) of the 0..1 float space the albumentations pipeline runs in.
AUG_RANGE_STD = 4.0
#: Default byte budget of the per-process cache of decoded JPG/PNG pairs.
DEFAULT_CACHE_BYTES = 1 << 30


def _albumentations():
    import albumentations as A

    return A


def _transform_class(name: Any, where: str):
    A = _albumentations()
    from albumentations.core.transforms_interface import BasicTransform

    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: needs 'name', an albumentations transform such as HorizontalFlip")
    cls = getattr(A, name, None)
    if not (inspect.isclass(cls) and (issubclass(cls, BasicTransform) or name in ("OneOf", "SomeOf", "Sequential"))):
        raise ConfigError(f"{where}: {name!r} is not an albumentations transform (e.g. HorizontalFlip, Rotate, "
                          "Affine, RandomBrightnessContrast, GaussNoise, GaussianBlur, CoarseDropout)")
    return cls


def build_augment(augment: Sequence[dict] | None, ignore_index: int = 255, where: str = "augment"):
    """Validate a YAML-declared pipeline and build an ``albumentations.Compose`` (``None`` when empty).

    Geometric transforms get ``fill=0.5`` (the band mean in the pipeline's 0..1 space) and
    ``fill_mask=ignore_index`` unless the entry sets them; ``CoarseDropout`` holes become ignore.
    """
    if not augment:
        return None
    A = _albumentations()
    return A.Compose(_build_list(augment, ignore_index, where), seed=0)


def _build_list(augment, ignore_index: int, where: str) -> list:
    if not isinstance(augment, (list, tuple)):
        raise ConfigError(f"{where}: must be a list of transforms such as [{{name: HorizontalFlip, p: 0.5}}]")
    return [_build_one(entry, ignore_index, f"{where}[{i}]") for i, entry in enumerate(augment)]


def _build_one(entry: Any, ignore_index: int, where: str):
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping such as {{name: HorizontalFlip, p: 0.5}}")
    kwargs = dict(entry)
    name = kwargs.pop("name", None)
    cls = _transform_class(name, where)
    where = f"{where} ({name})"
    if name in ("OneOf", "SomeOf", "Sequential"):
        kwargs["transforms"] = _build_list(kwargs.get("transforms"), ignore_index, f"{where}.transforms")
    params = inspect.signature(cls.__init__).parameters
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    bad = [k for k in kwargs if k not in params and not accepts_any]
    if bad:
        known = ", ".join(k for k in params if k not in ("self", "always_apply"))
        raise ConfigError(f"{where}: unknown option {bad[0]!r} (it takes: {known})")
    if "fill_mask" in params and "fill_mask" not in kwargs:
        kwargs["fill_mask"] = ignore_index
    if "fill" in params and "fill" not in kwargs and name != "CoarseDropout":
        kwargs["fill"] = 0.5
    if name == "CoarseDropout" and "fill" not in kwargs:
        kwargs["fill"] = 0.5
    for key in ("limit", "scale", "scale_limit", "hole_height_range", "hole_width_range", "num_holes_range",
                "std_range", "brightness_limit", "contrast_limit", "blur_limit", "rotate", "translate_percent",
                "shear", "sigma_limit"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    try:
        return cls(**kwargs)
    except Exception as exc:  # pydantic validation errors, TypeError
        text = " ".join(str(exc).split())
        raise ConfigError(f"{where}: invalid options ({text[:300]})") from None


class SegmentationDataset(Dataset):
    """``(image float32 (C, H, W) normalised, mask int64 (H, W))`` pairs for training.

    ``spec`` is a :class:`~terraseg.data.spec.DatasetSpec` (or a dataset YAML path), ``samples`` the
    samples to serve (default: every labelled one). ``crop_size`` (int or ``(h, w)``) takes a random
    window of each image, read alone from TIFFs; ``None`` serves whole images. Images smaller than
    the crop are padded (0 in the normalised image, ignore in the mask). ``samples_per_epoch`` sets
    the length: item ``i`` is a fresh random crop of sample ``i % len(samples)``.
    """

    def __init__(self, spec, samples: Sequence | None = None, crop_size: int | Sequence[int] | None = 512,
                 augment: Sequence[dict] | None = None, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, samples_per_epoch: int | None = None,
                 sampling: str = "uniform", class_balance: float = 0.0, cache_bytes: int = DEFAULT_CACHE_BYTES):
        if isinstance(spec, (str, Path)):
            from terraseg.data.spec import load_spec

            spec = load_spec(spec)
        self.spec = spec
        self.samples = list(samples) if samples is not None else spec.labelled()
        if not self.samples:
            raise DataError("no samples to serve (the list of images is empty)", spec.path)
        for s in self.samples:
            if s.mask is None:
                raise DataError("image has no mask; training needs a mask for every image", s.image)
        self.ignore_index = int(spec.ignore_index)
        self.normaliser = Normaliser.from_spec(spec, mean, std)  # the one rule, shared with prediction
        self.mean, self.std = self.normaliser.mean, self.normaliser.std
        if crop_size is None:
            self.crop = None
        else:
            c = (int(crop_size), int(crop_size)) if np.isscalar(crop_size) else tuple(int(v) for v in crop_size)
            if len(c) != 2 or min(c) < 1:
                raise ConfigError(f"crop_size {crop_size!r} must be a positive integer or (height, width)")
            self.crop = c
        self.augment = list(augment) if isinstance(augment, (list, tuple)) else (augment or None)
        self.transform = build_augment(self.augment, self.ignore_index)
        if samples_per_epoch is not None and int(samples_per_epoch) < 1:
            raise ConfigError(f"samples_per_epoch {samples_per_epoch!r} must be a positive integer")
        self.length = int(samples_per_epoch) if samples_per_epoch else len(self.samples)
        self.cache_bytes = int(cache_bytes)
        self._cache: OrderedDict = OrderedDict()
        self._cached_bytes = 0
        if self.crop is None:
            self.picker = None
        else:
            sizes = [self._checked_info(s).shape for s in self.samples]
            self.picker = CropPicker(sizes, spec.num_classes, sampling, class_balance,
                                     read_mask=lambda i: self._read(self.samples[i], None)[1])

    def __len__(self) -> int:
        return self.length

    # ------------------------------------------------------------------ reading
    def _read(self, sample, window: tuple[int, int, int, int] | None):
        """``(image, mask)`` of ``sample``, whole or a ``(row, col, h, w)`` window of it."""
        if window is not None and not uses_pillow(sample.image):
            from rasterio.windows import Window

            y, x, h, w = window
            return self.spec.read_pair(sample, Window(x, y, w, h))
        pair = self._cache.get(sample.key)
        if pair is None:
            pair = self.spec.read_pair(sample, None)
            for a in pair:  # shared by every later crop: never modified in place
                a.setflags(write=False)
            size = pair[0].nbytes + pair[1].nbytes
            if size <= self.cache_bytes:
                while self._cache and self._cached_bytes + size > self.cache_bytes:
                    _, old = self._cache.popitem(last=False)
                    self._cached_bytes -= old[0].nbytes + old[1].nbytes
                self._cache[sample.key] = pair
                self._cached_bytes += size
        else:
            self._cache.move_to_end(sample.key)
        if window is None:
            return pair
        y, x, h, w = window
        return pair[0][y:y + h, x:x + w], pair[1][y:y + h, x:x + w]

    def _checked_info(self, sample):
        """The image header, after checking once that the mask has the image's size."""
        info = self.spec.info(sample)
        checked = self.__dict__.setdefault("_size_checked", set())
        if sample.key not in checked:
            from terraseg.data.raster import raster_info

            m = raster_info(sample.mask)
            if (m.height, m.width) != (info.height, info.width):
                raise DataError(f"mask is {m.width}x{m.height} but its image {sample.image.name} is "
                                f"{info.width}x{info.height}", sample.mask)
            checked.add(sample.key)
        return info

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The normalised ``(H, W, C)`` float32 image and ``(H, W)`` uint8 mask of item ``index``
        (cropped and augmented, before conversion to tensors)."""
        if self.picker is None:
            sample, window = self.samples[index % len(self.samples)], None
        else:
            i, centre = self.picker.pick(index)
            sample = self.samples[i]
            info = self._checked_info(sample)
            window = crop_window(info.height, info.width, self.crop, centre)
        image, mask = self._read(sample, window)
        z = self.normalise(image, self.spec.nodata_value(sample))
        bad = ~np.isfinite(z).all(axis=-1)
        if bad.any():
            z[bad] = 0.0
            mask = mask.copy()
            mask[bad] = self.ignore_index
        if self.transform is not None:
            # the pipeline's own RNG follows numpy's global one, which DataLoader workers (and
            # terraseg.train's per-item seeding) seed differently: no repeated augmentations per worker
            self.transform.set_random_seed(int(np.random.randint(0, 2 ** 31 - 1)))
            u = 0.5 + z / (2 * AUG_RANGE_STD)
            out = self.transform(image=np.ascontiguousarray(u), mask=np.ascontiguousarray(mask))
            z = (np.asarray(out["image"], np.float32) - 0.5) * (2 * AUG_RANGE_STD)
            mask = np.asarray(out["mask"])
            if mask.ndim == 3:
                mask = mask[:, :, 0]
        if self.crop is not None:
            z, mask = self._fit(z, mask)
        return z, mask

    def normalise(self, image: np.ndarray, nodata: float | None = None) -> np.ndarray:
        z = self.normaliser(image)
        if nodata is not None:
            nd = np.isnan(image).all(axis=-1) if np.isnan(nodata) else (image == nodata).all(axis=-1)
            z[nd] = 0.0
        return z

    def _fit(self, z: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pad (0 / ignore) or centre-crop to exactly the crop size."""
        th, tw = self.crop  # type: ignore[misc]
        h, w = mask.shape
        if h > th or w > tw:
            y, x = max(0, (h - th) // 2), max(0, (w - tw) // 2)
            z, mask = z[y:y + th, x:x + tw], mask[y:y + th, x:x + tw]
            h, w = mask.shape
        if h < th or w < tw:
            zp = np.zeros((th, tw, z.shape[-1]), np.float32)
            mp = np.full((th, tw), self.ignore_index, mask.dtype)
            zp[:h, :w], mp[:h, :w] = z, mask
            z, mask = zp, mp
        return z, mask

    def __getitem__(self, index: int):
        if index < 0 or index >= self.length:
            raise IndexError(index)
        z, mask = self.load(index)
        return (torch.from_numpy(np.ascontiguousarray(z.transpose(2, 0, 1), dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(mask).astype(np.int64)))


__all__ = ["SegmentationDataset", "build_augment"]
