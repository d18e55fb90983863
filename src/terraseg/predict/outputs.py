"""Output writers: class-index raster, colour mask, overlay with legend, confidence/probabilities.

* GeoTIFF outputs are tiled (256 x 256), deflate-compressed (fast level 1), BigTIFF when needed, with the input's
  CRS and transform; they are written strip by strip through rasterio windows (:class:`RowWriter`
  buffers rows so that only whole block rows hit the file).
* The class-index GeoTIFF carries a colour table (the bundle's colours) and the class names as a
  ``CLASSES`` tag, so GIS software shows it coloured and labelled.
* The overlay is a PNG preview: the image with the colour mask blended on top and a legend (class
  name, colour, share of area). Scenes larger than ``max_size`` pixels on a side are downscaled for
  it (the other outputs are always full resolution).
"""

from __future__ import annotations

import json

import numpy as np

BLOCK = 256


def geotiff_profile(width: int, height: int, count: int, dtype: str, crs=None, transform=None,
                    nodata=None) -> dict:
    profile = {"driver": "GTiff", "width": width, "height": height, "count": count, "dtype": dtype,
               "compress": "deflate", "zlevel": 1, "BIGTIFF": "IF_SAFER", "tiled": True, "blockxsize": BLOCK,
               "blockysize": BLOCK}
    if dtype == "float32":
        profile["predictor"] = 3
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    if nodata is not None:
        profile["nodata"] = nodata
    return profile


def class_colormap(colors) -> dict[int, tuple[int, int, int, int]]:
    return {i: (int(c[0]), int(c[1]), int(c[2]), 255) for i, c in enumerate(colors)}


class BandColorizer:
    """Class indices ``(h, w)`` -> colours band-first ``(3, h, w)`` uint8 for GeoTIFF writing.

    Same colours as :func:`terraseg.data.palette.colorize` (indices without a class are black), but
    three 1-D lookups straight into band order, about 3x faster on large strips.
    """

    def __init__(self, colors):
        from terraseg.data.palette import colorize

        lut = colorize(np.arange(256, dtype=np.uint8)[None, :], colors)[0]  # (256, 3)
        self.lut = np.ascontiguousarray(lut.T)  # (3, 256)

    def __call__(self, classes: np.ndarray) -> np.ndarray:
        out = np.empty((3,) + classes.shape, np.uint8)
        for c in range(3):
            np.take(self.lut[c], classes, out=out[c])
        return out


def tag_classes(dst, class_names, colors) -> None:
    dst.update_tags(CLASSES=json.dumps(list(class_names)), COLORS=json.dumps([list(c) for c in colors]))


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
    labels = [f"{name}  {share:5.1f} %" for name, share in zip(class_names, shares)]
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
