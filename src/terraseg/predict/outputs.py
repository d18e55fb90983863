"""Output writers: class-index raster, colour mask, overlay with legend, confidence/probabilities.

* GeoTIFF outputs are tiled (256 x 256), deflate-compressed (fast level 1), BigTIFF when needed, with the input's
  CRS and transform; they are written strip by strip through rasterio windows (:class:`RowWriter`
  buffers rows so that only whole block rows hit the file).
* The class-index GeoTIFF is a Cloud Optimized GeoTIFF (:func:`to_cog`: written tiled while
  streaming, then translated by GDAL's COG driver with internal overviews resampled by mode) with a
  colour table (the bundle's colours) and the class names as a ``CLASSES`` tag. GeoTIFF has no
  place for GDAL category names, so they travel in the ``.aux.xml`` sidecar GDAL reads
  (:func:`write_category_names`: category names and a raster attribute table), and a QGIS
  ``.qml`` paletted style sits beside it (:func:`write_qml`), so ``gdalinfo``, QGIS and ArcGIS show
  class names.
* The colour GeoTIFF has an alpha band: nodata (indices without a class) is transparent.
* The overlay is a PNG preview: the image with the colour mask blended on top and a legend (class
  name, colour, share of area). Scenes larger than ``max_size`` pixels on a side are downscaled for
  it (the other outputs are always full resolution).
"""

from __future__ import annotations

import json

import numpy as np

from terraseg.data.raster import BLOCK


def class_colormap(colors) -> dict[int, tuple[int, int, int, int]]:
    return {i: (int(c[0]), int(c[1]), int(c[2]), 255) for i, c in enumerate(colors)}


class BandColorizer:
    """Class indices ``(h, w)`` -> colours band-first ``(3, h, w)`` uint8 for GeoTIFF writing.

    Same colours as :func:`terraseg.data.palette.colorize` (indices without a class are black), but
    1-D lookups straight into band order, about 3x faster on large strips. With ``alpha=True`` a
    fourth band is 255 on classes and 0 on nodata (for an RGBA GeoTIFF: see :func:`COLOR_PROFILE`).
    """

    def __init__(self, colors, alpha: bool = False):
        from terraseg.data.palette import colorize

        lut = colorize(np.arange(256, dtype=np.uint8)[None, :], colors)[0]  # (256, 3)
        if alpha:
            opaque = (np.arange(256) < len(colors)).astype(np.uint8) * 255
            lut = np.concatenate([lut, opaque[:, None]], axis=1)
        self.lut = np.ascontiguousarray(lut.T)  # (bands, 256)

    def __call__(self, classes: np.ndarray) -> np.ndarray:
        out = np.empty((len(self.lut),) + classes.shape, np.uint8)
        for c in range(len(self.lut)):
            np.take(self.lut[c], classes, out=out[c])
        return out


# Creation options of the colour GeoTIFF: RGB with the 4th band declared as alpha (GDAL ALPHA=YES).
COLOR_PROFILE = {"count": 4, "dtype": "uint8", "photometric": "RGB", "alpha": "YES"}


def tag_classes(dst, class_names, colors) -> None:
    dst.update_tags(CLASSES=json.dumps(list(class_names)), COLORS=json.dumps([list(c) for c in colors]))


# --------------------------------------------------------------------------------------------------
# QGIS / GDAL native class rasters


def to_cog(src_path, dst_path, resampling: str = "MODE") -> None:
    """Translate the tiled GeoTIFF ``src_path`` into a Cloud Optimized GeoTIFF ``dst_path``.

    GDAL's COG driver builds internal overviews (``resampling``: ``MODE`` or ``NEAREST`` keep class
    indices valid) and reorders the file so that readers fetch any window or zoom level with a few
    range requests. Colour table, nodata and tags are copied. Memory stays bounded by GDAL's block
    cache (overviews are computed from the tiled source, not from an in-memory array).
    """
    import rasterio.shutil

    from terraseg.data.source import gdal_env

    with gdal_env(GDAL_PAM_ENABLED="NO"):
        rasterio.shutil.copy(str(src_path), str(dst_path), driver="COG", COMPRESS="DEFLATE", LEVEL=1,
                             BLOCKSIZE=BLOCK, OVERVIEW_RESAMPLING=resampling, BIGTIFF="IF_SAFER")


def category_names_xml(class_names, colors) -> str:
    """GDAL PAM XML for band 1: category names and a thematic raster attribute table (value, class, colour)."""
    from xml.sax.saxutils import escape

    names = "".join(f"      <Category>{escape(str(n))}</Category>\n" for n in class_names)
    fields = [("Value", 0, 5), ("Class", 2, 2), ("Red", 0, 6), ("Green", 0, 7), ("Blue", 0, 8)]
    defs = "".join(f'      <FieldDefn index="{i}">\n        <Name>{name}</Name>\n        <Type>{typ}</Type>\n'
                   f"        <Usage>{usage}</Usage>\n      </FieldDefn>\n"
                   for i, (name, typ, usage) in enumerate(fields))
    rows = "".join(f'      <Row index="{i}"><F>{i}</F><F>{escape(str(n))}</F><F>{int(c[0])}</F><F>{int(c[1])}</F>'
                   f"<F>{int(c[2])}</F></Row>\n" for i, (n, c) in enumerate(zip(class_names, colors)))
    return ("<PAMDataset>\n  <PAMRasterBand band=\"1\">\n    <CategoryNames>\n" + names
            + "    </CategoryNames>\n    <GDALRasterAttributeTable tableType=\"thematic\">\n" + defs + rows
            + "    </GDALRasterAttributeTable>\n  </PAMRasterBand>\n</PAMDataset>\n")


def write_category_names(aux_path, class_names, colors) -> None:
    """Write the ``<raster>.aux.xml`` sidecar with the class names (see :func:`category_names_xml`)."""
    from terraseg._io import write_text_atomic

    write_text_atomic(aux_path, category_names_xml(class_names, colors))


def qml_style(class_names, colors, band: int = 1) -> str:
    """A QGIS paletted (unique values) style: one entry per class with the bundle's colour and name.

    Values without an entry (nodata 255) are not drawn.
    """
    from xml.sax.saxutils import quoteattr

    entries = "".join(
        f'        <paletteEntry value="{i}" color="#{int(c[0]):02x}{int(c[1]):02x}{int(c[2]):02x}" alpha="255" '
        f"label={quoteattr(str(n))}/>\n" for i, (n, c) in enumerate(zip(class_names, colors)))
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            '<qgis version="3.28.0" styleCategories="AllStyleCategories">\n'
            "  <pipe>\n"
            f'    <rasterrenderer type="paletted" band="{band}" opacity="1" alphaBand="-1" nodataColor="">\n'
            "      <rasterTransparency/>\n"
            "      <colorPalette>\n" + entries + "      </colorPalette>\n"
            "    </rasterrenderer>\n"
            '    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>\n'
            '    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0"/>\n'
            '    <rasterresampler maxOversampling="2"/>\n'
            "  </pipe>\n"
            "  <blendMode>0</blendMode>\n"
            "</qgis>\n")


def write_qml(path, class_names, colors) -> None:
    """Write the QGIS style (:func:`qml_style`); named like the raster, QGIS applies it on loading."""
    from terraseg._io import write_text_atomic

    write_text_atomic(path, qml_style(class_names, colors))


class RowWriter:
    """Writes consecutive row strips ``(bands, rows, W)`` to an open dataset in whole block rows."""

    def __init__(self, dst, block_rows: int = BLOCK):
        self.dst = dst
        self.block_rows = block_rows
        self.buf = np.empty((dst.count, block_rows, dst.width), dtype=dst.dtypes[0])
        self.filled = 0
        self.top = 0

    def add(self, data: np.ndarray) -> None:
        if data.ndim == 2:
            data = data[None]
        n, pos = data.shape[1], 0
        while pos < n:
            take = min(self.block_rows - self.filled, n - pos)
            self.buf[:, self.filled:self.filled + take] = data[:, pos:pos + take]
            self.filled += take
            pos += take
            if self.filled == self.block_rows:
                self.flush()

    def flush(self) -> None:
        from rasterio.windows import Window

        if self.filled:
            self.dst.write(self.buf[:, :self.filled], window=Window(0, self.top, self.dst.width, self.filled))
            self.top += self.filled
            self.filled = 0


# --------------------------------------------------------------------------------------------------
# overlay


def display_image(image: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """``(H, W, bands)`` of any dtype -> ``(H, W, 3)`` uint8 for display.

    Three or more bands show the first three as RGB, fewer show the first band as grey; non-uint8
    data is stretched per band between its 2nd and 98th percentile.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    rgb = image[:, :, :3] if image.shape[2] >= 3 else np.repeat(image[:, :, :1], 3, axis=2)
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb)
    out = np.empty(rgb.shape, np.uint8)
    for b in range(3):
        band = rgb[:, :, b].astype(np.float32)
        sample = band[valid] if valid is not None and valid.any() else band.reshape(-1)
        sample = sample[np.isfinite(sample)]
        lo, hi = (np.percentile(sample, [2, 98]) if sample.size else (0.0, 1.0))
        if hi <= lo:
            hi = lo + 1.0
        band = np.nan_to_num(band, nan=lo, posinf=hi, neginf=lo)  # NaN/inf would cast with a warning
        out[:, :, b] = np.clip((band - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
    return out


def preview_shape(height: int, width: int, max_size: int) -> tuple[int, int]:
    scale = min(1.0, max_size / max(height, width))
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def make_overlay(image_rgb: np.ndarray, classes: np.ndarray, colors, class_names, shares,
                 alpha: float = 0.45, ignore_index: int = 255):
    """The image with the colour mask blended on top and a legend panel on the right (PIL Image).

    ``shares`` are the classes' percentages of the classified area (shown in the legend).
    """
    from PIL import Image, ImageDraw

    from terraseg.data.palette import colorize
    from terraseg.schemas._validate import printable_label

    h, w = classes.shape
    base = Image.fromarray(np.ascontiguousarray(image_rgb))
    color = Image.fromarray(colorize(classes, colors))
    # blend only where a class was predicted (nodata stays as the image)
    mask = Image.fromarray(np.where(classes < len(class_names), int(round(alpha * 255)), 0).astype(np.uint8))
    base.paste(color, (0, 0), mask)
    del color, mask

    font_size = int(np.clip(min(h, 2000) / 40, 12, 40))
    font = _font(font_size)
    pad = font_size // 2
    swatch = font_size
    line = font_size + pad
    probe = ImageDraw.Draw(base)
    labels = [f"{printable_label(name)}  {share:5.1f} %" for name, share in zip(class_names, shares)]
    title = "class  (share of area)"
    text_w = max(probe.textlength(s, font=font) for s in labels + [title])
    panel_w = int(pad * 3 + swatch + text_w + pad)
    panel_h = max(h, int(pad * 2 + line * (len(labels) + 1)))
    canvas = Image.new("RGB", (w + panel_w, panel_h), (255, 255, 255))
    canvas.paste(base, (0, 0))
    del base
    draw = ImageDraw.Draw(canvas)
    x0, y = w + pad, pad
    draw.text((x0, y), title, fill=(0, 0, 0), font=font)
    y += line
    for label, c in zip(labels, colors):
        draw.rectangle([x0, y, x0 + swatch, y + swatch], fill=tuple(int(v) for v in c[:3]), outline=(0, 0, 0))
        draw.text((x0 + swatch + pad, y), label, fill=(0, 0, 0), font=font)
        y += line
    return canvas
