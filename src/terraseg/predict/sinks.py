"""Sinks: where the strips of a prediction go.

The engine emits the scene as consecutive strips of final rows (:class:`Strip`: probabilities,
classes with the ignore value on nodata, confidence, validity). A sink receives ``start(run)``
once, ``write(strip)`` for every strip in order, then ``finish()``. ``terraseg predict``,
``terraseg evaluate`` and the desktop app differ only in the sinks they attach:

* :class:`ArraySink` – classes / confidence / probabilities in memory (``predict_array``);
* :class:`ClassRasterSink`, :class:`ColorSink`, :class:`ConfidenceSink`, :class:`ProbabilitySink` –
  rasters written strip by strip (GeoTIFF) or, for picture inputs, as PNG at the end;
* :class:`AreaSink` – the class-area report (CSV + JSON);
* :class:`OverlaySink` – the downscaled overlay PNG with legend;
* :class:`VectorSink` – polygons (GPKG / GeoJSON);
* :class:`ConfusionSink` – a confusion matrix against a mask read strip by strip (evaluation).

:func:`file_sinks` builds the file sinks for a set of output paths, so every caller writes the same
files the same way.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np


@dataclass
class Strip:
    """Final rows ``top:bottom`` of the scene (arrays are valid only during ``write``)."""

    top: int
    bottom: int
    probs: np.ndarray  # float32 (K, n, W)
    classes: np.ndarray  # uint8 (n, W), the ignore value where the input is invalid
    confidence: np.ndarray  # float32 (n, W), 0 where the input is invalid
    valid: np.ndarray | None  # bool (n, W); None: every pixel valid


@dataclass
class RunInfo:
    """What sinks know about a run: the model metadata and the scene's grid."""

    meta: Any  # BundleMeta
    source: Any  # terraseg.data.source.Source
    ignore: int  # the class-raster value of invalid pixels

    @property
    def width(self) -> int:
        return self.source.width

    @property
    def height(self) -> int:
        return self.source.height

    @property
    def crs(self):
        return self.source.crs

    @property
    def transform(self):
        return self.source.transform

    @property
    def georeferenced(self) -> bool:
        return self.source.georeferenced


class Sink:
    """Base class: override what you need. ``reads_source``: ``finish`` reads the input again (it runs
    in the calling thread, where the GDAL environment of a remote input is set)."""

    reads_source = False

    def start(self, run: RunInfo) -> None:
        self.run = run

    def write(self, strip: Strip) -> None:
        pass

    def finish(self) -> None:
        pass


def finish_sinks(sinks) -> None:
    """``finish()`` every sink, the independent ones at the same time: their last work (PNG encoding,
    the Cloud Optimized GeoTIFF copy, polygons) is in C code that releases the GIL and writes its own
    file, so on 2 cores the final writes of a prediction overlap instead of queueing. The first error
    is raised once all have ended."""
    sinks = list(sinks)
    if len(sinks) < 2:
        for sink in sinks:
            sink.finish()
        return
    from concurrent.futures import ThreadPoolExecutor

    here = [s for s in sinks if s.reads_source]
    pooled = [s for s in sinks if not s.reads_source]
    errors = []
    with ThreadPoolExecutor(max(1, len(pooled)), thread_name_prefix="terraseg-sink") as pool:
        futures = [pool.submit(s.finish) for s in pooled]
        for sink in here:
            try:
                sink.finish()
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others ended
                errors.append(exc)
        for future in futures:
            exc = future.exception()
            if exc is not None:
                errors.append(exc)
    if errors:
        raise errors[0]


class ArraySink(Sink):
    """Whole-scene arrays in memory: ``classes`` (H, W) uint8, ``confidence`` (H, W) float32 and,
    when asked for, ``probabilities`` (H, W, K) float32."""

    def __init__(self, probabilities: bool = False):
        self.want_probabilities = probabilities
        self.classes = self.confidence = self.probabilities = None

    def start(self, run: RunInfo) -> None:
        super().start(run)
        h, w = run.height, run.width
        self.classes = np.empty((h, w), np.uint8)
        self.confidence = np.empty((h, w), np.float32)
        if self.want_probabilities:
            self.probabilities = np.empty((h, w, run.meta.num_classes), np.float32)

    def write(self, strip: Strip) -> None:
        self.classes[strip.top:strip.bottom] = strip.classes
        self.confidence[strip.top:strip.bottom] = strip.confidence
        if self.probabilities is not None:
            self.probabilities[strip.top:strip.bottom] = strip.probs.transpose(1, 2, 0)


# --------------------------------------------------------------------------------------------------
# rasters


class _RasterSink(Sink):
    """A raster output: GeoTIFF written strip by strip, or (``png=True``) a PNG written at the end."""

    count = 1
    dtype = "uint8"

    def __init__(self, path: str | Path, png: bool = False):
        self.path = Path(path)
        self.png = png
        self._writer = None
        self._whole: np.ndarray | None = None

    def _nodata(self):
        return None

    def _configure(self, dst) -> None:
        pass

    def start(self, run: RunInfo) -> None:
        super().start(run)
        if self.png:
            self._whole = np.empty((self.count, run.height, run.width), self.dtype)
            return
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        from terraseg.data.raster import geotiff_profile
        from terraseg.predict.outputs import RowWriter

        profile = geotiff_profile(run.width, run.height, self.count, self.dtype, run.crs, run.transform,
                                  self._nodata())
        profile.update(self._extra_profile())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dst = rasterio.open(self.path, "w", **profile)
        self._configure(dst)
        self._writer = RowWriter(dst)

    def _extra_profile(self) -> dict:
        return {}

    def _data(self, strip: Strip) -> np.ndarray:  # (count, n, W)
        raise NotImplementedError

    def write(self, strip: Strip) -> None:
        data = self._data(strip)
        if self._whole is not None:
            self._whole[:, strip.top:strip.bottom] = data.reshape((self.count,) + data.shape[-2:])
        else:
            self._writer.add(data)

    def finish(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.dst.close()
        elif self._whole is not None:
            self._write_png(np.moveaxis(self._whole, 0, -1))
            self._whole = None

    def _write_png(self, array: np.ndarray) -> None:
        from terraseg.data.raster import write_raster

        write_raster(self.path, array)


class ClassRasterSink(_RasterSink):
    """Class indices with the bundle's colour table (and class names as tags in GeoTIFFs).

    GeoTIFFs are streamed tiled, then translated into a Cloud Optimized GeoTIFF with mode overviews
    (:func:`~terraseg.predict.outputs.to_cog`); ``aux_path`` / ``qml_path`` receive the GDAL category
    names and the QGIS style.
    """

    def __init__(self, path, png: bool = False, aux_path=None, qml_path=None):
        super().__init__(path, png)
        self.aux_path, self.qml_path = aux_path, qml_path

    def _nodata(self):
        return self.run.ignore if self.run.source.has_nodata else None

    def _configure(self, dst) -> None:
        from terraseg.predict.outputs import class_colormap, tag_classes

        dst.write_colormap(1, class_colormap(self.run.meta.colors))
        tag_classes(dst, self.run.meta.classes, self.run.meta.colors)

    def _data(self, strip):
        return strip.classes

    def finish(self) -> None:
        import os

        from terraseg.predict.outputs import to_cog, write_category_names, write_qml

        streamed = self._writer is not None
        super().finish()
        meta = self.run.meta
        if streamed:
            cog = self.path.with_name(self.path.stem + ".cog" + self.path.suffix)
            try:
                to_cog(self.path, cog)
                os.replace(cog, self.path)
            finally:
                cog.unlink(missing_ok=True)
        if self.aux_path is not None:
            write_category_names(self.aux_path, meta.classes, meta.colors)
        if self.qml_path is not None:
            write_qml(self.qml_path, meta.classes, meta.colors)

    def _write_png(self, array):
        from terraseg.data.raster import write_raster

        write_raster(self.path, array, colormap={i: tuple(c) for i, c in enumerate(self.run.meta.colors)})


class ColorSink(_RasterSink):
    """The class colours as an RGBA raster: nodata is transparent (alpha 0)."""

    count = 4

    def start(self, run: RunInfo) -> None:
        from terraseg.predict.outputs import BandColorizer

        self._colorize = BandColorizer(run.meta.colors, alpha=True)
        super().start(run)

    def _extra_profile(self) -> dict:
        from terraseg.predict.outputs import COLOR_PROFILE

        return dict(COLOR_PROFILE)

    def _data(self, strip):
        return self._colorize(strip.classes)

    def _write_png(self, array) -> None:
        from terraseg.data.raster import write_raster

        # zlib level 1: a 2448² RGBA mask encodes 4-5x faster than at the default 6 for ~1.6x the bytes
        write_raster(self.path, array, png_compress_level=1)


class ConfidenceSink(_RasterSink):
    """The probability of the chosen class (float32)."""

    dtype = "float32"

    def _data(self, strip):
        return strip.confidence


class ProbabilitySink(_RasterSink):
    """Every class's probability, one float32 band per class, named after the class."""

    dtype = "float32"

    def start(self, run: RunInfo) -> None:
        self.count = run.meta.num_classes
        super().start(run)

    def _configure(self, dst) -> None:
        for i, name in enumerate(self.run.meta.classes):
            dst.set_band_description(i + 1, name)

    def _data(self, strip):
        return strip.probs


# --------------------------------------------------------------------------------------------------
# reports, overlay, polygons, metrics


class AreaSink(Sink):
    """The class-area report, accumulated strip by strip; written as CSV and/or JSON at the end."""

    def __init__(self, csv_path: str | Path | None = None, json_path: str | Path | None = None, **info):
        self.csv_path, self.json_path, self.info = csv_path, json_path, info
        self.report: dict | None = None

    def start(self, run: RunInfo) -> None:
        from terraseg.predict.areas import AreaAccumulator

        super().start(run)
        self.acc = AreaAccumulator(run.meta.num_classes, transform=run.transform, crs=run.crs, width=run.width,
                                   height=run.height)

    def write(self, strip):
        self.acc.add(strip.top, strip.classes)

    def finish(self) -> None:
        from terraseg.predict.areas import write_area_report

        self.report = self.acc.report(self.run.meta.classes, width=self.run.width, height=self.run.height,
                                      **self.info)
        if self.csv_path is not None or self.json_path is not None:
            write_area_report(self.report, self.csv_path, self.json_path)


class OverlaySink(Sink):
    """A downscaled preview of the image with the class colours blended on top and a legend.

    Classes are sampled to the preview grid (nearest pixel centre) as strips pass, and the image comes
    from the source's own preview, so nothing is read twice at full resolution.
    """

    reads_source = True  # the preview of the input under the map

    def __init__(self, path: str | Path | None, max_size: int = 2048, alpha: float = 0.45):
        self.path, self.max_size, self.alpha = path, max_size, alpha
        self.image = None  # the PIL image, after finish

    def start(self, run: RunInfo) -> None:
        from terraseg.predict.areas import AreaAccumulator
        from terraseg.predict.outputs import preview_shape

        super().start(run)
        self.shape = ph, pw = preview_shape(run.height, run.width, self.max_size)
        self.rows = ((np.arange(ph) + 0.5) * run.height / ph).astype(np.int64)
        self.cols = ((np.arange(pw) + 0.5) * run.width / pw).astype(np.int64)
        self.classes = np.empty((ph, pw), np.uint8)
        # the legend's shares are shares of ground area, as in the area report
        self.counts = AreaAccumulator(run.meta.num_classes, transform=run.transform, crs=run.crs,
                                      width=run.width, height=run.height)

    def write(self, strip):
        self.counts.add(strip.top, strip.classes)
        lo, hi = np.searchsorted(self.rows, [strip.top, strip.bottom])
        if hi > lo:
            self.classes[lo:hi] = strip.classes[self.rows[lo:hi] - strip.top][:, self.cols]

    def finish(self) -> None:
        from PIL import Image

        from terraseg.predict.outputs import display_image, make_overlay

        ph, pw = self.shape
        pixels, valid = self.run.source.preview(max(ph, pw))
        rgb = display_image(pixels, valid)
        if rgb.shape[:2] != (ph, pw):
            rgb = np.asarray(Image.fromarray(rgb).resize((pw, ph), Image.Resampling.BOX))
        report = self.counts.report(self.run.meta.classes)
        shares = [row["percent"] for row in report["classes"]]
        self.image = make_overlay(rgb, self.classes, self.run.meta.colors, self.run.meta.classes, shares,
                                  alpha=self.alpha)
        if self.path is not None:  # a preview: zlib level 1 encodes 2-3x faster for ~5 % more bytes
            self.image.save(self.path, format="PNG", compress_level=1)


class VectorSink(Sink):
    """Polygons of the class raster (GPKG or GeoJSON), built once the whole raster is known."""

    def __init__(self, path: str | Path, fmt: str = "gpkg", min_area: float = 0.0, simplify: float = 0.0):
        self.path, self.fmt, self.min_area, self.simplify = path, fmt, min_area, simplify

    def start(self, run):
        super().start(run)
        self.classes = np.empty((run.height, run.width), np.uint8)

    def write(self, strip):
        self.classes[strip.top:strip.bottom] = strip.classes

    def finish(self) -> None:
        from terraseg.predict.vectorize import vectorize

        vectorize(self.classes, self.path, self.run.meta.classes, transform=self.run.transform,
                  crs=self.run.crs, fmt=self.fmt, min_area=self.min_area, simplify=self.simplify)
        self.classes = None


class ConfusionSink(Sink):
    """A confusion matrix of the prediction against a mask read strip by strip.

    ``mask_rows(top, bottom)`` returns the true class indices ``(n, W)`` uint8; pixels that are
    invalid in the input count as ignored in the mask too.
    """

    def __init__(self, mask_rows: Callable[[int, int], np.ndarray], num_classes: int, ignore_index: int = 255):
        from terraseg.metrics import ConfusionMatrix

        self.mask_rows = mask_rows
        self.ignore_index = ignore_index
        self.matrix = ConfusionMatrix(num_classes, ignore_index)

    def write(self, strip):
        mask = np.asarray(self.mask_rows(strip.top, strip.bottom))
        if strip.valid is not None:
            mask = np.where(strip.valid, mask, np.uint8(self.ignore_index))
        self.matrix.update(strip.classes, mask)


def file_sinks(paths: dict[str, Path], options, png: bool = False, **info) -> list[Sink]:
    """The sinks writing the outputs named in ``paths`` (from ``options.output_paths``), in order."""
    sinks: list[Sink] = [ClassRasterSink(paths["classes"], png=png, aux_path=paths.get("classes_aux"),
                                         qml_path=paths.get("classes_qml"))]
    if "color" in paths:
        sinks.append(ColorSink(paths["color"], png=png))
    if "confidence" in paths:
        sinks.append(ConfidenceSink(paths["confidence"]))
    if "probabilities" in paths:
        sinks.append(ProbabilitySink(paths["probabilities"]))
    if "areas_csv" in paths or "areas_json" in paths:
        sinks.append(AreaSink(paths.get("areas_csv"), paths.get("areas_json"), **info))
    if "overlay" in paths:
        sinks.append(OverlaySink(paths["overlay"], options.overlay_max_size))
    if "vector" in paths:
        sinks.append(VectorSink(paths["vector"], options.vector, options.min_area, options.simplify))
    return sinks
