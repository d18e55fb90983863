"""Normalisation: the one place that maps raw pixel values to model inputs and back.

``(x - mean) / std`` per band, with the statistics in raw pixel units (0..255 for 8-bit imagery,
reflectance or DN for multispectral data). Training, prediction, int8 calibration and the
multitask targets' inverse all use :class:`Normaliser`, so they cannot disagree.

One rule for defaults: missing statistics mean ``mean = 127.5`` and ``std = 64`` per band, which
suits 8-bit imagery (``terraseg data stats`` measures the real ones, and training records them in the
bundle). One rule for bad values: a std that is not > 0, or a mean or std that is not finite, or a
list whose length differs from the band count, is refused with one line naming the key.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from terraseg.errors import ConfigError

#: Used when a data set or bundle gives no statistics (suits 8-bit imagery).
DEFAULT_MEAN = 127.5
DEFAULT_STD = 64.0


class Normaliser:
    """Per-band ``(x - mean) / std``; ``mean`` and ``std`` are float32 ``(bands,)`` arrays."""

    def __init__(self, mean: Sequence[float] | None, std: Sequence[float] | None, bands: int, *,
                 source=None, error=ConfigError):
        self.bands = int(bands)
        self.mean = _values(mean, DEFAULT_MEAN, self.bands, "mean", source, error)
        self.std = _values(std, DEFAULT_STD, self.bands, "std", source, error)
        for i, s in enumerate(self.std):
            if not s > 0:
                raise error(f"key 'std[{i}]': must be > 0, got {float(s):g}", source)
        self.scale = (1.0 / self.std).astype(np.float32)  # multiply, do not divide, in hot loops

    @classmethod
    def from_meta(cls, meta, bands: int | None = None, source=None) -> "Normaliser":
        """From a bundle's metadata (``mean``, ``std``, ``in_channels``)."""
        from terraseg.errors import ModelError

        return cls(meta.mean, meta.std, meta.in_channels if bands is None else bands, source=source,
                   error=ModelError)

    @classmethod
    def from_spec(cls, spec, mean=None, std=None) -> "Normaliser":
        """From a dataset description (its ``mean``/``std``), optionally overridden by ``mean``/``std``."""
        bands = getattr(spec, "band_count", None) or spec.bands
        return cls(spec.mean if mean is None else mean, spec.std if std is None else std, bands,
                   source=getattr(spec, "path", None))

    def lists(self) -> tuple[list[float], list[float]]:
        """``(mean, std)`` as plain float lists (for YAML, JSON and bundle metadata)."""
        return [float(v) for v in self.mean], [float(v) for v in self.std]

    def __call__(self, pixels: np.ndarray, channel_axis: int = -1) -> np.ndarray:
        """Normalised float32 copy of ``pixels`` whose bands lie on ``channel_axis``."""
        shape = [1] * np.ndim(pixels)
        shape[channel_axis] = self.bands
        out = np.asarray(pixels, dtype=np.float32) - self.mean.reshape(shape)
        out *= self.scale.reshape(shape)
        return out

    def into(self, pixels_hwc: np.ndarray, out_chw: np.ndarray) -> np.ndarray:
        """Normalise a ``(h, w, bands)`` tile into a preallocated float32 ``(bands, h, w)`` buffer."""
        np.subtract(pixels_hwc.transpose(2, 0, 1), self.mean[:, None, None], out=out_chw, casting="unsafe")
        out_chw *= self.scale[:, None, None]
        return out_chw

    def inverse(self, values: np.ndarray, channel_axis: int = -1) -> np.ndarray:
        """Raw pixel units of normalised ``values`` (float32)."""
        shape = [1] * np.ndim(values)
        shape[channel_axis] = values.shape[channel_axis]
        n = values.shape[channel_axis]
        return np.asarray(values, np.float32) * self.std[:n].reshape(shape) + self.mean[:n].reshape(shape)

    def __eq__(self, other) -> bool:
        return isinstance(other, Normaliser) and np.array_equal(self.mean, other.mean) \
            and np.array_equal(self.std, other.std)

    def __repr__(self) -> str:
        return f"Normaliser(mean={self.lists()[0]}, std={self.lists()[1]})"


def _values(values, default: float, bands: int, key: str, source, error) -> np.ndarray:
    if values is None:
        return np.full(bands, default, np.float32)
    if isinstance(values, (int, float)):
        values = [values] * bands
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise error(f"key '{key}': expected a list of {bands} numbers, got {values!r}", source) from None
    if len(out) != bands:
        raise error(f"key '{key}': has {len(out)} value{'s' if len(out) != 1 else ''} for {bands} band"
                    f"{'s' if bands != 1 else ''}", source)
    for i, v in enumerate(out):
        if not math.isfinite(v):
            raise error(f"key '{key}[{i}]': must be a finite number, got {v}", source)
    return np.asarray(out, np.float32)
