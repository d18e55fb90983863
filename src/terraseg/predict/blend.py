"""Blending windows for overlapping tiles.

Each tile's probabilities are multiplied by a smooth 2-D weight that is largest in the middle and
small (but never zero) at the border; the scene is the weighted sum divided by the summed weights.
Predictions near tile borders, where the network sees little context, count for little, so there
are no seams. Weights are strictly positive everywhere, so every pixel covered by a tile has a
well-defined blended value even at the scene edge where only a tile border reaches.
"""

from __future__ import annotations

import numpy as np

from terraseg.errors import ConfigError

BLENDS = ("cosine", "gaussian", "none")
_FLOOR = 1e-3  # smallest weight relative to the centre


def window_1d(n: int, kind: str = "cosine") -> np.ndarray:
    """A symmetric 1-D weight of length ``n`` in (0, 1], float64."""
    if n < 1:
        raise ConfigError(f"blending window length must be positive, got {n}")
    centre = (np.arange(n, dtype=np.float64) + 0.5) / n  # pixel centres in (0, 1)
    if kind == "cosine":
        # Hann window sampled at pixel centres: 0.5 - 0.5 cos(2 pi t) is > 0 for t in (0, 1).
        w = 0.5 - 0.5 * np.cos(2.0 * np.pi * centre)
    elif kind == "gaussian":
        sigma = 1.0 / 8.0
        w = np.exp(-0.5 * ((centre - 0.5) / sigma) ** 2)
    elif kind == "none":
        w = np.ones(n)
    else:
        raise ConfigError(f"unknown blend {kind!r}; choose one of {', '.join(BLENDS)}")
    w = w / w.max()
    return np.maximum(w, _FLOOR)


def window_2d(height: int, width: int, kind: str = "cosine") -> np.ndarray:
    """Outer product of two 1-D windows: float32 ``(height, width)``, every value > 0."""
    w = np.outer(window_1d(height, kind), window_1d(width, kind))
    return np.maximum(w, _FLOOR * _FLOOR).astype(np.float32)
