"""Sliding-window tiling of a scene into fixed-size tiles.

Every tile has the same shape, so tiles can be batched:

* along an axis longer than the tile, tiles start every ``stride = tile - overlap`` pixels and the
  last tile is shifted inward so that it ends exactly at the scene edge (never shrunk, never padded);
* along an axis shorter than the tile, a single tile covers the whole axis and is padded up to the
  tile size before inference (the padded part is cut off again afterwards).

Windows are :class:`rasterio.windows.Window` values clipped to the scene (``col_off, row_off, width,
height``); :func:`pad_amounts` says how much padding a window needs to reach the tile size.

The tile size a user or a bundle asks for is an upper bound: :meth:`TileGrid.for_scene` shrinks it to
the smallest size (a multiple of :data:`FIT_MULTIPLE`) that covers the scene with as many tiles per
axis, so a model that takes any input size is not run on pixels that only a shifted last tile or
padding brings in; on a backend that runs several tiles side by side it may take a smaller tile and a
few more tiles per row, so that no tile runs alone (:func:`parallel_tile_size`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from terraseg.errors import ConfigError, DataError


# The default overlap: a quarter tile, at most this many pixels. Border effects of a network reach a
# fixed number of pixels into a tile, whatever its size, while every overlapping pixel is paid for
# again; on the Dubai held-out images 16 px loses no mIoU against a quarter tile (and neither does
# 0) at 256 and 512 px tiles, and a 2448² scene at 512 px tiles then runs 25 tiles instead of 49
# (docs/benchmarks/peers.md, the sweep table).
DEFAULT_OVERLAP_MAX = 16

# Fitted tile sizes are rounded up to a multiple of this: the downsampling factor of 5-level encoders,
# so the skip connections of every architecture line up without internal padding.
FIT_MULTIPLE = 32


def resolve_overlap(tile_size: int, overlap: int | float | None) -> int:
    """Overlap in pixels: ``None`` -> a quarter of the tile, at most :data:`DEFAULT_OVERLAP_MAX`; a
    float in (0, 1) -> that fraction."""
    if overlap is None:
        return min(tile_size // 4, DEFAULT_OVERLAP_MAX)
    if isinstance(overlap, float) and 0 < overlap < 1:
        overlap = int(round(tile_size * overlap))
    overlap = int(overlap)
    if overlap < 0 or overlap >= tile_size:
        raise ConfigError(f"overlap must be between 0 and tile size - 1 ({tile_size - 1}), got {overlap}")
    return overlap


def axis_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets of tiles along one axis (sorted, unique); the last tile ends at ``length``."""
    if length <= 0:
        raise DataError(f"image size must be positive, got {length} pixels along one axis")
    if tile <= 0 or stride <= 0:
        raise ConfigError(f"tile size and stride must be positive, got tile {tile} and stride {stride}")
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return sorted(set(starts))


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _tile_for(length: int, n: int, overlap: int, multiple: int) -> int:
    """The smallest tile, a multiple of ``multiple``, of which ``n`` overlapping ones cover ``length``."""
    return _round_up(-(-(length + (n - 1) * overlap) // n), multiple)


def fitted_tile_size(height: int, width: int, tile_size: int, overlap: int, multiple: int = FIT_MULTIPLE) -> int:
    """The smallest square tile, a multiple of ``multiple`` and at most ``tile_size``, whose grid has no
    more tiles per axis than ``tile_size``'s.

    A 2448 px axis at 1024 px tiles with 16 px overlap takes 3 tiles (9.4 MP through the network for a
    6.0 MP scene, the last tile shifted back over its neighbour); 3 tiles of 832 px cover it too (6.2 MP).
    An axis shorter than the tile gets one tile of its own length, rounded up, instead of padding to
    ``tile_size``.
    """
    def axis(length: int) -> int:
        if length <= tile_size:
            return _round_up(length, multiple)
        return _tile_for(length, len(axis_starts(length, tile_size, tile_size - overlap)), overlap, multiple)

    fitted = max(axis(height), axis(width), _round_up(overlap + 1, multiple))
    return min(int(tile_size), fitted)


# A tile that does not fill every parallel run (the last of a batch of 3 on 2 cores) runs alone on all
# cores: 1.2-1.3x the time per tile of tiles run side by side in --tune's warm runs
# (benchmarks/peers.py, 2 cores), more in a predict run, where that session's first run is slow too
# (the 2448² scene: 3.79 s with no tile alone against 4.36 s, docs/benchmarks/peers.md).
LEFTOVER_COST = 1.5


def _grid_cost(grid: "TileGrid", at_once: int, batch_size: int) -> float:
    """Network pixels of ``grid``, a tile that runs alone counted :data:`LEFTOVER_COST` times: the engine
    cuts each tile row into batches of ``batch_size``, the backend runs ``at_once`` tiles side by side."""
    cols, runs = len(grid.col_starts), 0.0
    for b0 in range(0, cols, batch_size):
        n = min(batch_size, cols - b0)
        runs += n - n % at_once + LEFTOVER_COST * (n % at_once)
    return len(grid.row_starts) * runs * grid.tile_size ** 2


def parallel_tile_size(height: int, width: int, tile_size: int, overlap: int, at_once: int, batch_size: int,
                       multiple: int = FIT_MULTIPLE) -> int:
    """:func:`fitted_tile_size`, or a smaller tile giving up to ``at_once - 1`` more tiles per row when
    that is cheaper by :func:`_grid_cost`: a 2448 px wide scene on 2 cores runs 4 tiles of 640 px per
    row side by side (6.6 MP) faster than 3 of 832 px, two side by side and one alone (6.2 MP)."""
    fitted = fitted_tile_size(height, width, tile_size, overlap, multiple)
    if at_once < 2:
        return fitted
    grid = TileGrid(height, width, fitted, overlap)
    best, cost = fitted, _grid_cost(grid, at_once, batch_size)
    base = len(grid.col_starts)
    smallest = _round_up(overlap + 1, multiple)
    for n in range(base + 1, base + at_once):
        tile = max(_tile_for(width, n, overlap, multiple), smallest)
        if tile >= best:
            continue
        c = _grid_cost(TileGrid(height, width, tile, overlap), at_once, batch_size)
        if c < cost:
            best, cost = tile, c
    return best


@dataclass(frozen=True)
class TileGrid:
    """The tile layout of a ``height`` x ``width`` scene."""

    height: int
    width: int
    tile_size: int
    overlap: int

    def __post_init__(self) -> None:
        if self.tile_size < 1:
            raise ConfigError(f"tile size must be at least 1, got {self.tile_size}")
        if self.height < 1 or self.width < 1:
            raise DataError(f"empty scene ({self.width}x{self.height})")
        resolve_overlap(self.tile_size, self.overlap)

    @classmethod
    def for_scene(cls, height: int, width: int, tile_size: int, overlap: int, fit: bool = True,
                  at_once: int = 1, batch_size: int = 1) -> "TileGrid":
        """The grid of a whole scene; ``fit``: with :func:`parallel_tile_size` (for models that take any
        input size; a model with a fixed input shape needs ``fit=False``), for a backend that runs
        ``at_once`` tiles side by side and batches of ``batch_size``."""
        if fit and height >= 1 and width >= 1 and tile_size >= 1:
            tile_size = parallel_tile_size(height, width, int(tile_size), int(overlap), max(1, int(at_once)),
                                           max(1, int(batch_size)))
        return cls(height, width, int(tile_size), int(overlap))

    @property
    def stride(self) -> int:
        return self.tile_size - self.overlap

    @property
    def tile_height(self) -> int:
        """Height of every window (the tile size, or the scene height when that is smaller)."""
        return min(self.tile_size, self.height)

    @property
    def tile_width(self) -> int:
        return min(self.tile_size, self.width)

    @property
    def row_starts(self) -> list[int]:
        return axis_starts(self.height, self.tile_size, self.stride)

    @property
    def col_starts(self) -> list[int]:
        return axis_starts(self.width, self.tile_size, self.stride)

    def __len__(self) -> int:
        return len(self.row_starts) * len(self.col_starts)

    def windows(self) -> list:
        """All tile windows, row by row."""
        return [w for row in self.rows() for w in row]

    def rows(self) -> Iterator[list]:
        """Tile windows grouped by tile row (all windows of one row share ``row_off``)."""
        from rasterio.windows import Window

        cols = self.col_starts
        for r in self.row_starts:
            yield [Window(c, r, self.tile_width, self.tile_height) for c in cols]

    def pad_amounts(self) -> tuple[int, int]:
        """(bottom, right) padding that brings every window up to ``tile_size`` x ``tile_size``."""
        return self.tile_size - self.tile_height, self.tile_size - self.tile_width

    def output_strips(self) -> list[tuple[int, int]]:
        """Row ranges ``(start, stop)`` the streaming engine finalises, in order.

        After tile row ``i`` is done, no later tile touches the rows above the start of tile row
        ``i + 1``; those rows are final. The strips partition ``range(height)`` exactly, so every
        output pixel is written exactly once.
        """
        starts = self.row_starts
        bounds = starts[1:] + [self.height]
        strips, top = [], 0
        for stop in bounds:
            strips.append((top, stop))
            top = stop
        return strips


def tile_windows(height: int, width: int, tile_size: int, overlap: int | float | None = None) -> list:
    """Convenience: all tile windows for a scene (see :class:`TileGrid`)."""
    return TileGrid(height, width, tile_size, resolve_overlap(tile_size, overlap)).windows()
