"""What the colours of a set of masks are: classes, near-duplicates, edge blends, disguised index masks.

Masks saved as JPEG or drawn with anti-aliasing hold hundreds of colours for a handful of classes:
JPEG noise scatters each class colour a few levels around it, and edges mix two class colours. The
class colours are the *peaks*: colours covering a real share of the pixels, each farther than the
merge radius from a more frequent one. A peak lying on the line between two larger peaks, with far
fewer pixels, is an edge blend, not a class. Every other colour belongs to its nearest class colour
when it lies within the tolerance in every channel (the rule ``color_tolerance`` applies when the
masks are read), otherwise it is left to ignore.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from terraseg.data.palette import Color, nearest_colors, to_hex

#: more distinct colours than this and the masks are taken as noisy (JPEG, anti-aliased)
CLEAN_MAX_COLORS = 32
#: colours closer than this (in every channel) to a more frequent one are near-duplicates of it
MERGE_RADIUS = 16
#: a peak needs at least this share of all mask pixels
MIN_PEAK_SHARE = 2e-4
#: largest automatic tolerance (128 would let a colour halfway between 0 and 255 match both)
MAX_TOLERANCE = 127


@dataclass
class ColorCluster:
    """A class colour with the near-duplicates that belong to it."""

    color: Color  # the most frequent colour of the cluster
    pixels: int
    colors: int  # distinct colours in the cluster
    spread: int  # largest per-channel distance of a member from ``color``


@dataclass
class Palette:
    """Result of :func:`cluster_colors`."""

    clusters: list[ColorCluster]
    tolerance: int
    blends: list[Color]  # peaks taken as edge blends of two classes
    beyond: dict  # colours farther than the tolerance from every class colour -> pixels

    @property
    def beyond_pixels(self) -> int:
        return int(sum(self.beyond.values()))


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = float(np.clip(np.dot(p - a, ab) / max(float(np.dot(ab, ab)), 1e-9), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))


def find_peaks(totals: dict[Color, int], radius: int = MERGE_RADIUS, min_share: float = MIN_PEAK_SHARE
               ) -> tuple[list[Color], list[Color]]:
    """``(class colours, blend colours)`` among ``{colour: pixels}``, most frequent first."""
    items = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(totals.values()) or 1
    peaks: list[Color] = []
    for color, n in items:
        if n < min_share * total:
            break
        c = np.array(color)
        if all(np.abs(c - np.array(p)).max() > radius for p in peaks):
            peaks.append(color)
    classes: list[Color] = []
    blends: list[Color] = []
    for color in peaks:
        c = np.array(color, float)
        n = totals[color]
        bigger = [p for p in classes if totals[p] >= 4 * n]
        # JPEG mixes colour at a coarser resolution than brightness: blends stray a little off the line
        is_blend = any(_segment_distance(c, np.array(a, float), np.array(b, float))
                       <= max(radius, 0.15 * float(np.linalg.norm(np.subtract(a, b))))
                       for i, a in enumerate(bigger) for b in bigger[i + 1:])
        (blends if is_blend else classes).append(color)
    return classes, blends


def auto_tolerance(colors: list[Color]) -> int:
    """The largest tolerance under which no colour can lie within reach of two class colours."""
    if len(colors) < 2:
        return MAX_TOLERANCE
    arr = np.array(colors, np.int32)
    d = np.abs(arr[:, None, :] - arr[None, :, :]).max(-1)
    d[np.arange(len(arr)), np.arange(len(arr))] = 256
    return int(min(MAX_TOLERANCE, max(0, (int(d.min()) - 1) // 2)))


def assign(totals: dict[Color, int], centres: list[Color], tolerance: int
           ) -> tuple[list[ColorCluster], dict[Color, int]]:
    """Every colour to its nearest centre when within ``tolerance`` in every channel (the rule
    ``color_tolerance`` applies when masks are read): ``(clusters in the order of centres, {colour beyond: pixels})``."""
    colors = list(totals)
    near, cheb, _ = nearest_colors(np.array(colors), np.array(centres))
    counts = np.array([totals[c] for c in colors], np.int64)
    clusters = []
    for k, centre in enumerate(centres):
        member = (near == k) & (cheb <= tolerance)
        clusters.append(ColorCluster(centre, int(counts[member].sum()), int(member.sum()),
                                     int(cheb[member].max()) if member.any() else 0))
    beyond = {colors[i]: int(counts[i]) for i in np.flatnonzero(cheb > tolerance)}
    return clusters, beyond


def cluster_colors(totals: dict[Color, int], tolerance: int | None = None) -> Palette:
    """Group ``{colour: pixels}`` into class colours (see the module docstring).

    ``tolerance=None`` decides: up to :data:`CLEAN_MAX_COLORS` colours are clean masks (every colour is
    its own class, tolerance 0); more are noisy masks, whose tolerance is the largest that keeps the
    class colours apart (:func:`auto_tolerance`). ``tolerance=0`` keeps every colour apart.
    """
    if tolerance == 0 or (tolerance is None and len(totals) <= CLEAN_MAX_COLORS):
        clusters = [ColorCluster(c, n, 1, 0) for c, n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]
        return Palette(clusters, 0, [], {})
    classes, blends = find_peaks(totals, radius=min(tolerance, MERGE_RADIUS) if tolerance else MERGE_RADIUS)
    tol = auto_tolerance(classes) if tolerance is None else int(tolerance)
    clusters, beyond = assign(totals, classes, tol)
    clusters.sort(key=lambda c: (-c.pixels, c.color))
    return Palette(clusters, tol, blends, beyond)


def index_channel(colors: list[Color], max_value: int = 63) -> int | None:
    """The channel holding class values when every colour lies on one channel (the others zero) with
    small values -- an index mask saved as RGB (e.g. in the blue channel); grey ``(v, v, v)`` gives 0."""
    if len(colors) < 2:
        return None
    arr = np.array(colors, np.int64)
    if arr.max() > max_value:
        return None
    for ch in range(3):
        others = [c for c in range(3) if c != ch]
        if not arr[:, others].any() and arr[:, ch].any():
            return ch
    if (arr[:, 0] == arr[:, 1]).all() and (arr[:, 1] == arr[:, 2]).all():
        return 0
    return None


def colormap_per_image(per_mask: list[set]) -> str | None:
    """A description of the problem when the masks look drawn with a colormap scaled to each image.

    Then a class takes a different colour in every mask, but the colormap's two ends appear in every
    mask and are the only colours of every two-colour mask, and together the masks use more colours
    than any one holds.
    """
    sets = [s for s in per_mask if len(s) >= 2]
    if len(sets) < 3:
        return None
    ends = set.intersection(*sets)
    union = set.union(*sets)
    most = max(len(s) for s in sets)
    pairs = [s for s in sets if len(s) == 2]
    if len(ends) != 2 or len(union) < most + 2 or any(s != ends for s in pairs):
        return None
    a, b = sorted(ends)
    return (f"the masks look drawn with a colormap scaled to each image: every mask holds {to_hex(a)} and "
            f"{to_hex(b)} (the colormap's ends), no mask holds more than {most} colours but together they use "
            f"{len(union)}, so one class has different colours in different masks and no palette fits them; "
            "save the masks as class values (an index PNG/GeoTIFF) or with fixed class colours")


__all__ = ["ColorCluster", "Palette", "assign", "cluster_colors", "find_peaks", "auto_tolerance", "index_channel",
           "colormap_per_image"]
