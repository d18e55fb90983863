"""How much of the masks a dataset description leaves to the ignore index, and the refusal when it is most.

A description whose colours do not match the masks (wrong palette, JPEG noise without a tolerance,
index masks read as colours) turns most pixels into ignore; convert-masks, stats and training refuse
it (``max_ignored_share``, default 0.5) with one line naming the most frequent unmatched colours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from terraseg.data.palette import to_hex
from terraseg.errors import DataError

#: how many masks training reads to estimate the share (spread evenly over the list)
CHECK_MASKS = 64


def describe_unknown(unknown: dict, total_pixels: int | None = None, shown: int = 3) -> str:
    """``"26,986 unknown colours, the most frequent: #0A0B0C (3.1 %), ..."`` -- short whatever the count."""
    items = sorted(unknown.items(), key=lambda kv: -kv[1])
    what = "colour" if items and isinstance(items[0][0], tuple) else "value"
    total = total_pixels or sum(unknown.values()) or 1

    def one(k, n):
        label = to_hex(k) if isinstance(k, tuple) else str(k)
        share = 100 * n / total
        return f"{label} ({share:.2f} %)" if total_pixels and share >= 0.01 else f"{label} ({n:,} px)"

    head = f"{len(items):,} unknown {what}{'s' if len(items) != 1 else ''}"
    if not items:
        return head
    return head + (", the most frequent: " if len(items) > shown else ": ") + ", ".join(
        one(k, n) for k, n in items[:shown])


@dataclass
class IgnoreTally:
    """Mask pixels seen, those that became ignore, and the unmatched colours/values among them."""

    num_classes: int
    pixels: int = 0
    ignored: int = 0
    unknown: dict = field(default_factory=dict)

    def add(self, index: np.ndarray, unknown: dict) -> None:
        self.pixels += int(index.size)
        self.ignored += int(np.count_nonzero(index >= self.num_classes))
        for k, n in unknown.items():
            self.unknown[k] = self.unknown.get(k, 0) + int(n)

    @property
    def share(self) -> float:
        return self.ignored / self.pixels if self.pixels else 0.0

    def check(self, limit: float, where, estimate: bool = False) -> None:
        """Raise a one-line :class:`DataError` when more than ``limit`` of the pixels are ignore."""
        if self.pixels == 0 or self.share <= limit:
            return
        unknown = sum(self.unknown.values())
        cause = (describe_unknown(self.unknown, self.pixels) if unknown else
                 "the pixels are colours/values listed under 'ignore'")
        raise DataError(f"{100 * self.share:.1f} % of the mask pixels{' (in the masks read)' if estimate else ''} "
                        f"would be ignored, more than max_ignored_share: {limit:g}; {cause}; name them in 'classes', "
                        "set color_tolerance/color_snap, or rerun `terraseg data inspect`", where)


def check_ignored_share(spec, samples: Sequence, where=None, max_masks: int = CHECK_MASKS) -> IgnoreTally:
    """Refuse ``spec`` when more than its ``max_ignored_share`` of mask pixels would be ignore.

    Reads at most ``max_masks`` masks spread evenly over ``samples`` (training calls this before it
    starts; a sample is enough to tell a palette that does not fit the masks).
    """
    labelled = [s for s in samples if s.mask is not None]
    if len(labelled) > max_masks:
        picks = np.linspace(0, len(labelled) - 1, max_masks).round().astype(int)
        labelled = [labelled[i] for i in sorted(set(picks.tolist()))]
    tally = IgnoreTally(spec.num_classes)
    for s in labelled:
        index, unknown = spec.read_mask(s)
        tally.add(index, unknown)
    tally.check(spec.max_ignored_share, where if where is not None else (spec.path or spec.root),
                estimate=len(labelled) < len([s for s in samples if s.mask is not None]))
    return tally


__all__ = ["IgnoreTally", "check_ignored_share", "describe_unknown"]
