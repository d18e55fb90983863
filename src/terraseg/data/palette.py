"""Mask palettes: RGB colour masks <-> class-index masks, and palette discovery.

Colours are packed into one ``uint32`` (``r << 16 | g << 8 | b``) so that a mask of millions of
pixels is matched against the palette with one sorted search instead of per-colour comparisons.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from terraseg.errors import DataError

Color = tuple[int, int, int]

#: A readable default palette for index masks that come without colours.
DEFAULT_COLORS: list[Color] = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
    (0, 0, 128), (128, 128, 128),
]


def default_colors(n: int) -> list[Color]:
    """``n`` distinct colours (the fixed list first, then deterministic pseudo-random ones)."""
    out = list(DEFAULT_COLORS[:n])
    rng = np.random.default_rng(1234)
    while len(out) < n:
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        if c not in out and c != (0, 0, 0):
            out.append(c)  # type: ignore[arg-type]
    return out


def parse_color(value, what: str = "colour") -> Color:
    """``[r, g, b]``, ``"#RRGGBB"`` or ``"r,g,b"`` -> ``(r, g, b)``; raises ``ValueError`` otherwise."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("#") and len(text) == 7:
            try:
                return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)
            except ValueError:
                pass
        elif "," in text:
            value = [v.strip() for v in text.split(",")]
        else:
            raise ValueError(f"{what} {value!r} is not '#RRGGBB' or [r, g, b]")
    if isinstance(value, (list, tuple)) and len(value) == 3:
        try:
            rgb = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"{what} {value!r} must hold three integers 0-255") from None
        if all(0 <= v <= 255 for v in rgb):
            return rgb  # type: ignore[return-value]
    raise ValueError(f"{what} {value!r} is not '#RRGGBB' or three integers 0-255")


def to_hex(color: Sequence[int]) -> str:
    return "#{:02X}{:02X}{:02X}".format(*[int(c) for c in color[:3]])


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``(H, W)`` uint32 with ``r << 16 | g << 8 | b``."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] < 3:
        raise ValueError(f"expected an (H, W, 3) colour mask, got shape {rgb.shape}")
    r = rgb[..., 0].astype(np.uint32)
    g = rgb[..., 1].astype(np.uint32)
    b = rgb[..., 2].astype(np.uint32)
    return (r << 16) | (g << 8) | b


def pack_colors(colors: Iterable[Sequence[int]]) -> np.ndarray:
    return np.array([(int(c[0]) << 16) | (int(c[1]) << 8) | int(c[2]) for c in colors], dtype=np.uint32)


def unpack_color(value: int) -> Color:
    value = int(value)
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def count_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of an integer array and their counts, fast when there are few of them.

    A strided subsample proposes the candidate values, every pixel is then looked up with a sorted
    search and counted with ``bincount``; only the (rare) pixels the subsample missed go through a
    full ``np.unique``. The result is exact.
    """
    flat = np.asarray(values).reshape(-1)
    if flat.size == 0:
        return flat[:0], np.zeros(0, np.int64)
    step = max(1, flat.size // 65536)
    cand = np.unique(flat[::step])
    pos = np.searchsorted(cand, flat)
    pos[pos == cand.size] = 0
    hit = cand[pos] == flat
    counts = np.bincount(pos[hit], minlength=cand.size).astype(np.int64)
    if hit.all():
        keep = counts > 0
        return cand[keep], counts[keep]
    rest_vals, rest_counts = np.unique(flat[~hit], return_counts=True)
    vals = np.concatenate([cand, rest_vals])
    cnts = np.concatenate([counts, rest_counts.astype(np.int64)])
    order = np.argsort(vals, kind="stable")
    vals, cnts = vals[order], cnts[order]
    keep = cnts > 0
    return vals[keep], cnts[keep]


def count_colors(rgb: np.ndarray) -> dict[Color, int]:
    """``{(r, g, b): pixel count}`` of an ``(H, W, 3)`` mask."""
    vals, cnts = count_values(pack_rgb(rgb))
    return {unpack_color(v): int(c) for v, c in zip(vals, cnts)}


def _lookup(keys: np.ndarray, table_keys: np.ndarray, table_values: np.ndarray, fill: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Map ``keys`` through a small table; returns (mapped, found-mask)."""
    if table_keys.size == 0:
        return np.full(keys.shape, fill, np.uint8), np.zeros(keys.shape, bool)
    order = np.argsort(table_keys)
    sk, sv = table_keys[order], table_values[order]
    pos = np.searchsorted(sk, keys)
    pos[pos == sk.size] = 0
    found = sk[pos] == keys
    out = np.where(found, sv[pos], fill).astype(np.uint8)
    return out, found


def nearest_colors(colors: np.ndarray, palette: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``colors`` ``(U, 3)``: the nearest of ``palette`` ``(K, 3)`` (Euclidean), its index,
    the Chebyshev distance (largest per-channel difference) and the Euclidean distance to it."""
    colors = np.asarray(colors, np.int32).reshape(-1, 3)
    palette = np.asarray(palette, np.int32).reshape(-1, 3)
    idx = np.zeros(len(colors), np.int64)
    cheb = np.zeros(len(colors), np.int32)
    eucl = np.zeros(len(colors), np.float64)
    for start in range(0, len(colors), 8192):  # blocks keep the (U, K, 3) difference small
        diff = colors[start:start + 8192, None, :] - palette[None, :, :]
        d2 = (diff * diff).sum(-1)
        k = d2.argmin(1)
        rows = np.arange(len(k))
        idx[start:start + 8192] = k
        cheb[start:start + 8192] = np.abs(diff[rows, k]).max(-1)
        eucl[start:start + 8192] = np.sqrt(d2[rows, k])
    return idx, cheb, eucl


def rgb_to_index(rgb: np.ndarray, colors: Sequence[Sequence[int]], ignore_colors: Sequence[Sequence[int]] = (),
                 ignore_index: int = 255, tolerance: int = 0, snap: float | None = None
                 ) -> tuple[np.ndarray, dict[Color, int]]:
    """Colour mask ``(H, W, 3)`` -> class-index mask ``(H, W)`` uint8.

    Pixels with a class colour get the class index, ``ignore_colors`` get ``ignore_index``. A pixel of
    another colour takes its nearest class (or ignore) colour when that lies within ``tolerance`` in
    every channel (JPEG noise) or within ``snap`` (Euclidean distance; anti-aliased edges); the rest get
    ``ignore_index`` and are counted in the returned ``{colour: pixels}``.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[-1] < 3):
        raise DataError(f"expected an RGB colour mask, got {1 if rgb.ndim == 2 else rgb.shape[-1]} band(s)")
    packed = pack_rgb(rgb)
    table = list(colors) + list(ignore_colors)
    keys = pack_colors(table) if table else np.zeros(0, np.uint32)
    values = np.array(list(range(len(colors))) + [ignore_index] * len(ignore_colors), dtype=np.int64)
    # a colour listed as both class and ignore: the class wins (first occurrence)
    keys, first = np.unique(keys, return_index=True)
    values = values[first]
    index, found = _lookup(packed, keys, values, ignore_index)
    unknown: dict[Color, int] = {}
    if found.all():
        return index, unknown
    if (tolerance > 0 or snap is not None) and keys.size:
        rest, inverse = np.unique(packed[~found], return_inverse=True)
        near, cheb, eucl = nearest_colors(np.stack([rest >> 16, (rest >> 8) & 255, rest & 255], -1),
                                          np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], -1))
        ok = cheb <= tolerance
        if snap is not None:
            ok |= eucl <= snap
        index[~found] = np.where(ok, values[near], ignore_index).astype(np.uint8)[inverse.reshape(-1)]
        counts = np.bincount(inverse.reshape(-1), minlength=rest.size)
        unknown = {unpack_color(v): int(c) for v, c in zip(rest[~ok], counts[~ok])}
        return index, unknown
    vals, cnts = count_values(packed[~found])
    return index, {unpack_color(v): int(c) for v, c in zip(vals, cnts)}


def mask_to_index(mask: np.ndarray, *, mask_type: str, colors: Sequence[Sequence[int]], class_values: Sequence[int],
                  ignore_colors: Sequence[Sequence[int]] = (), ignore_values: Sequence[int] = (),
                  ignore_index: int = 255, tolerance: int = 0, snap: float | None = None,
                  channel: int | None = None, path: str | Path | None = None) -> tuple[np.ndarray, dict]:
    """A mask as read from disk -> ``(class index (H, W) uint8, {unknown colour/value: pixels})``.

    The one mask-reading rule of convert-masks, stats, training and evaluation. ``mask_type`` is
    ``rgb`` (colours, with ``tolerance``/``snap``) or ``index`` (values; ``channel`` takes them from one
    band of an RGB file, e.g. an index stored in the blue channel).
    """
    if mask_type == "rgb":
        if mask.ndim == 3 and mask.shape[-1] < 3:
            raise DataError(f"mask has {mask.shape[-1]} band(s) but the dataset describes colour masks "
                            "(classes with 'color'); use 'value' per class for index masks", path)
        return rgb_to_index(mask, colors, ignore_colors, ignore_index, tolerance, snap)
    if channel is not None and mask.ndim == 3:
        if channel >= mask.shape[-1]:
            raise DataError(f"mask has {mask.shape[-1]} band(s), so it has no channel {channel} (mask_channel)", path)
        mask = mask[:, :, channel]
    if mask.ndim == 3 and mask.shape[-1] != 1:
        raise DataError(f"mask has {mask.shape[-1]} bands but the dataset describes index masks "
                        "(classes with 'value'); use 'color' per class for colour masks, or 'mask_channel' "
                        "when one channel holds the class values", path)
    return values_to_index(mask, class_values, ignore_values, ignore_index)


def values_to_index(mask: np.ndarray, values: Sequence[int], ignore_values: Sequence[int] = (),
                    ignore_index: int = 255) -> tuple[np.ndarray, dict[int, int]]:
    """Index mask with arbitrary class values (e.g. 1..6) -> contiguous class indices 0..K-1.

    Returns ``(index uint8 (H, W), {unknown value: pixels})``; unknown values become ``ignore_index``.
    """
    mask = np.asarray(mask)
    if mask.ndim == 3:
        if mask.shape[-1] != 1:
            raise DataError(f"expected a single-band index mask, got {mask.shape[-1]} bands")
        mask = mask[:, :, 0]
    keys = np.array(list(values) + list(ignore_values), dtype=np.int64)
    vals = np.array(list(range(len(values))) + [ignore_index] * len(ignore_values), dtype=np.int64)
    keys, first = np.unique(keys, return_index=True)
    vals = vals[first]
    flat = mask.astype(np.int64, copy=False)
    if len(values) and list(values) == list(range(len(values))) and not len(ignore_values):
        # already contiguous 0..K-1: a cheap range check
        found = (flat >= 0) & (flat < len(values))
        index = np.where(found, flat, ignore_index).astype(np.uint8)
    else:
        index, found = _lookup(flat, keys, vals, ignore_index)
    unknown: dict[int, int] = {}
    if not found.all():
        v, c = count_values(flat[~found])
        unknown = {int(a): int(b) for a, b in zip(v, c)}
    return index, unknown


def colorize(index: np.ndarray, colors: Sequence[Sequence[int]], ignore_color: Sequence[int] = (0, 0, 0)
             ) -> np.ndarray:
    """Class-index mask ``(H, W)`` -> ``(H, W, 3)`` uint8 colours; indices without a class get ``ignore_color``."""
    index = np.asarray(index)
    if index.ndim == 3 and index.shape[-1] == 1:
        index = index[:, :, 0]
    lut = np.empty((256, 3), np.uint8)
    lut[:] = np.asarray(ignore_color[:3], np.uint8)
    for i, c in enumerate(colors[:256]):
        lut[i] = c[:3]
    if index.dtype != np.uint8:
        index = np.where((index >= 0) & (index < 256), index, 255).astype(np.uint8)
    return lut[index]


def discover_palette(mask_paths: Iterable[str | Path], *, progress: bool = True
                     ) -> list[tuple[Color, int, float]]:
    """Every distinct colour over ``mask_paths``: ``[(colour, pixel_count, share), ...]`` most common first.

    Single-band masks report their values as ``(v,)`` tuples instead of colours.
    """
    from terraseg._progress import track
    from terraseg.data.raster import read_raster

    paths = list(mask_paths)
    totals: dict[tuple, int] = {}
    it = track(paths, total=len(paths), description="reading masks") if progress else paths
    for p in it:
        arr = read_raster(p)
        if arr.shape[-1] >= 3:
            vals, cnts = count_values(pack_rgb(arr))
            keys = [unpack_color(v) for v in vals]
        else:
            vals, cnts = count_values(arr[:, :, 0])
            keys = [(int(v),) for v in vals]
        for k, c in zip(keys, cnts):
            totals[k] = totals.get(k, 0) + int(c)
    grand = sum(totals.values()) or 1
    return [(k, n, n / grand) for k, n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]
