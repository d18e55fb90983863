"""``terraseg data stats``: exact per-band mean/std, class pixel frequencies and class weights.

Mean and std are exact over every valid pixel of the set, computed in one streaming pass: each image
(read in row blocks, windowed for TIFFs) contributes its count, mean and sum of squared deviations in
float64, merged with Chan et al.'s parallel formula. This is not the mean of per-image stds, which
ignores how much the image means differ.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from terraseg.data.ignored import IgnoreTally
from terraseg.errors import ConfigError, DataError

ROW_BLOCK = 1024


class RunningStats:
    """Per-band count, mean and M2 (sum of squared deviations), mergeable (Chan et al. 1979)."""

    def __init__(self, bands: int):
        self.n = 0
        self.mean = np.zeros(bands, np.float64)
        self.m2 = np.zeros(bands, np.float64)
        self.min = np.full(bands, np.inf)
        self.max = np.full(bands, -np.inf)

    def update(self, pixels: np.ndarray) -> None:
        """Add ``(N, bands)`` pixels."""
        if pixels.shape[0] == 0:
            return
        if pixels.dtype in (np.uint8, np.uint16):
            self._update_histogram(pixels)
            return
        x = pixels.astype(np.float64, copy=False)
        nb = x.shape[0]
        mb = x.mean(axis=0)
        m2b = ((x - mb) ** 2).sum(axis=0)
        self.merge(nb, mb, m2b)
        self.min = np.minimum(self.min, x.min(axis=0))
        self.max = np.maximum(self.max, x.max(axis=0))

    def _update_histogram(self, pixels: np.ndarray) -> None:
        """Exact per-band count/mean/M2 of 8/16-bit integers from their histogram (fast, no float copy)."""
        nb = pixels.shape[0]
        mb = np.zeros(pixels.shape[1])
        m2b = np.zeros(pixels.shape[1])
        for b in range(pixels.shape[1]):
            h = np.bincount(pixels[:, b], minlength=1).astype(np.float64)
            v = np.arange(h.size, dtype=np.float64)
            mb[b] = (h @ v) / nb
            m2b[b] = h @ (v - mb[b]) ** 2
            nz = np.flatnonzero(h)
            self.min[b] = min(self.min[b], float(nz[0]))
            self.max[b] = max(self.max[b], float(nz[-1]))
        self.merge(nb, mb, m2b)

    def merge(self, nb: int, mb: np.ndarray, m2b: np.ndarray) -> None:
        na = self.n
        n = na + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2b + delta ** 2 * (na * nb / n)
        self.n = n

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / self.n) if self.n else np.full_like(self.m2, np.nan)


@dataclass
class DatasetStats:
    """Result of :func:`compute_stats` (all per band / per class lists)."""

    bands: int
    mean: list[float]
    std: list[float]
    min: list[float]
    max: list[float]
    pixels: int  # valid image pixels used for mean/std
    class_names: list[str] = field(default_factory=list)
    class_pixels: list[int] = field(default_factory=list)
    class_frequency: list[float] = field(default_factory=list)  # share of labelled (non-ignore) pixels
    class_weights: list[float] = field(default_factory=list)  # median-frequency balancing
    ignored_pixels: int = 0
    images: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "bands": self.bands, "mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
            "pixels": self.pixels, "images": self.images, "ignored_pixels": self.ignored_pixels,
            "classes": [{"name": n, "pixels": p, "frequency": f, "weight": w} for n, p, f, w in
                        zip(self.class_names, self.class_pixels, self.class_frequency, self.class_weights)],
        }


def _row_windows(height: int, width: int, block: int):
    from rasterio.windows import Window

    for r in range(0, height, block):
        yield Window(0, r, width, min(block, height - r))


def median_frequency_weights(class_pixels: Sequence[int], image_pixels_present: Sequence[int]) -> list[float]:
    """Eigen & Fergus median-frequency balancing: ``w_c = median(f) / f_c`` with
    ``f_c = pixels of class c / pixels of the images where c appears``; absent classes get 0."""
    cp = np.asarray(class_pixels, np.float64)
    ip = np.asarray(image_pixels_present, np.float64)
    present = (cp > 0) & (ip > 0)
    freq = np.zeros_like(cp)
    freq[present] = cp[present] / ip[present]
    if not present.any():
        return [0.0] * len(cp)
    med = float(np.median(freq[present]))
    return [float(med / f) if f > 0 else 0.0 for f in freq]


def compute_stats(spec, samples: Sequence | None = None, *, classes: bool = True, images: bool = True,
                  progress: bool = True) -> DatasetStats:
    """Exact per-band mean/std (nodata and non-finite pixels excluded), min/max, per-class pixel
    counts and frequencies, and median-frequency class weights over ``samples`` (default: every
    labelled image, or every image when none has a mask).

    ``images=False`` reads only the masks (class statistics only; mean/std/min/max are empty lists).
    """
    if not images:
        return _class_stats(spec, samples, progress)
    from terraseg._progress import track
    from terraseg.data.raster import uses_pillow

    if isinstance(spec, (str, Path)):
        from terraseg.data.spec import load_spec

        spec = load_spec(spec)
    if samples is None:
        samples = spec.labelled() or spec.items()
    samples = list(samples)
    if not samples:
        raise DataError("no images to compute statistics on", spec.path or spec.root)
    run = RunningStats(spec.bands)
    k = spec.num_classes
    class_pixels = np.zeros(k, np.int64)
    present_pixels = np.zeros(k, np.int64)
    ignored = 0
    tally = IgnoreTally(k)
    for s in track(samples, description="computing statistics") if progress else samples:
        info = spec.info(s)
        if info.count != spec.bands and not (info.count == 4 and spec.bands == 3 and uses_pillow(s.image)):
            raise DataError(f"image has {info.count} band(s) but the dataset says bands: {spec.bands}", s.image)
        nodata = spec.nodata_value(s)
        windows = [None] if uses_pillow(s.image) else list(_row_windows(info.height, info.width, ROW_BLOCK))
        img_counts = np.zeros(k, np.int64)
        for w in windows:
            img = spec.read_image(s, w)
            px = img.reshape(-1, img.shape[-1])
            valid = np.ones(px.shape[0], bool)
            if px.dtype.kind == "f":
                valid &= np.isfinite(px).all(axis=1)
            if nodata is not None:
                valid &= ~(np.isnan(px).all(axis=1) if np.isnan(nodata) else (px == nodata).all(axis=1))
            run.update(px if valid.all() else px[valid])
            if classes and s.mask is not None:
                mask, unknown = spec.read_mask(s, w)
                if mask.shape != img.shape[:2]:
                    raise DataError(f"mask is {mask.shape[1]}x{mask.shape[0]} but its image is "
                                    f"{img.shape[1]}x{img.shape[0]}", s.mask)
                m = mask.reshape(-1)[valid]
                counts = np.bincount(m, minlength=256)
                img_counts += counts[:k]
                ignored += int(counts[k:].sum())
                tally.add(m, unknown)
        class_pixels += img_counts
        if img_counts.sum():
            present_pixels[img_counts > 0] += int(img_counts.sum())
    if run.n == 0:
        raise DataError("every pixel is nodata; no statistics", spec.path or spec.root)
    tally.check(spec.max_ignored_share, spec.path or spec.root)
    labelled = int(class_pixels.sum())
    return DatasetStats(
        bands=spec.bands, mean=[float(v) for v in run.mean], std=[float(v) for v in run.std],
        min=[float(v) for v in run.min], max=[float(v) for v in run.max], pixels=int(run.n),
        class_names=spec.class_names if classes else [],
        class_pixels=[int(v) for v in class_pixels] if classes else [],
        class_frequency=[float(v / labelled) if labelled else 0.0 for v in class_pixels] if classes else [],
        class_weights=median_frequency_weights(class_pixels, present_pixels) if classes else [],
        ignored_pixels=ignored, images=len(samples),
    )


def _class_stats(spec, samples, progress: bool) -> DatasetStats:
    from terraseg._progress import track

    if isinstance(spec, (str, Path)):
        from terraseg.data.spec import load_spec

        spec = load_spec(spec)
    samples = [s for s in (samples if samples is not None else spec.labelled()) if s.mask is not None]
    if not samples:
        raise DataError("no labelled images to compute class statistics on", spec.path or spec.root)
    k = spec.num_classes
    class_pixels = np.zeros(k, np.int64)
    present_pixels = np.zeros(k, np.int64)
    ignored = 0
    tally = IgnoreTally(k)
    for s in track(samples, description="counting classes") if progress else samples:
        mask, unknown = spec.read_mask(s)
        tally.add(mask, unknown)
        counts = np.bincount(mask.ravel(), minlength=256)
        class_pixels += counts[:k]
        ignored += int(counts[k:].sum())
        if counts[:k].sum():
            present_pixels[counts[:k] > 0] += int(counts[:k].sum())
    tally.check(spec.max_ignored_share, spec.path or spec.root)
    labelled = int(class_pixels.sum())
    return DatasetStats(
        bands=spec.bands, mean=[], std=[], min=[], max=[], pixels=0, class_names=spec.class_names,
        class_pixels=[int(v) for v in class_pixels],
        class_frequency=[float(v / labelled) if labelled else 0.0 for v in class_pixels],
        class_weights=median_frequency_weights(class_pixels, present_pixels), ignored_pixels=ignored,
        images=len(samples))


def write_stats_to_yaml(yaml_path: str | Path, stats: DatasetStats) -> Path:
    """Put ``mean``/``std`` into a dataset YAML (replacing existing ones), keeping its comments."""
    from terraseg._io import write_text_atomic
    path = Path(yaml_path)
    if path.is_dir():
        path = path / "dataset.yaml"
    text = path.read_text(encoding="utf-8")
    lines: list[str] = []
    skipping = False
    for ln in text.splitlines():
        if re.match(r"^(mean|std)\s*:", ln):
            skipping = True  # drop the old value, including a block list below it
            continue
        if skipping and (ln.startswith((" ", "\t", "-")) and ln.strip()):
            continue
        skipping = False
        if not ln.startswith("# mean/std: exact per-band"):
            lines.append(ln)

    def fmt(vals):
        return "[" + ", ".join(f"{v:.6g}" for v in vals) + "]"

    lines += [f"# mean/std: exact per-band statistics over {stats.pixels} pixels of {stats.images} image(s) "
              "(terraseg data stats)", f"mean: {fmt(stats.mean)}", f"std: {fmt(stats.std)}"]
    new = "\n".join(lines) + "\n"
    import yaml

    from terraseg.data.spec import spec_from_dict

    try:  # validate before replacing the file
        spec_from_dict(yaml.safe_load(new), base_dir=path.resolve().parent, path=path)
    except (ConfigError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot write mean/std into the YAML ({exc})", path) from None
    return write_text_atomic(path, new)


__all__ = ["RunningStats", "DatasetStats", "compute_stats", "median_frequency_weights", "write_stats_to_yaml"]
