"""``terraseg data split``: deterministic train/val/test(/holdout) lists of image keys.

Split files are JSON: ``{"train": [keys], "val": [...], "test": [...], "holdout": [...]}`` where a
key is the image path relative to the data set's root (``Sample.key``).

* ``by="group"`` (default when the data set has a ``group`` rule) keeps every group (e.g. a
  ``Tile N`` folder) in one set, so neighbouring pixels do not leak between train and val/test.
* ``holdout=N`` sets N images apart for visual checks; they are taken from the test groups (or the
  val groups when there is no test set), so they never share a group with the training images.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Sequence

from terraseg.errors import ConfigError, DataError
from terraseg.schemas._validate import parse_json

SPLIT_NAMES = ("train", "val", "test", "holdout")


def load_split(path: str | Path) -> dict[str, list[str]]:
    """Read and validate a split file; missing lists come back empty."""
    path = Path(path)
    if not path.is_file():
        raise DataError("split file not found", path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not a valid split JSON file ({exc})", path) from None
    data = parse_json(text, path, DataError, "split JSON file", invalid="not a valid split JSON file")
    if not isinstance(data, dict):
        raise DataError('a split file must be a JSON object such as {"train": [...], "val": [...]}', path)
    out: dict[str, list[str]] = {}
    for key, value in data.items():
        if key.startswith("_"):
            continue  # metadata such as "_meta"
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DataError(f"list {key!r} must be a list of image keys (strings)", path)
        out[key] = list(value)
    for name in SPLIT_NAMES:
        out.setdefault(name, [])
    seen: dict[str, str] = {}
    for name in SPLIT_NAMES:
        for k in out[name]:
            if k in seen:
                raise DataError(f"image {k!r} is in both {seen[k]!r} and {name!r}", path)
            seen[k] = name
    return out


def _counts(n: int, val: float, test: float) -> tuple[int, int]:
    for name, f in (("val", val), ("test", test)):
        if not 0 <= f < 1:
            raise ConfigError(f"{name} fraction {f} must be in [0, 1)")
    if val + test >= 1:
        raise ConfigError(f"val + test fractions ({val} + {test}) leave nothing to train on")
    n_val = round(val * n) if val > 0 else 0
    n_test = round(test * n) if test > 0 else 0
    n_val = max(n_val, 1) if val > 0 else 0
    n_test = max(n_test, 1) if test > 0 else 0
    return n_val, n_test


def make_split(spec, val: float = 0.15, test: float = 0.15, holdout: int = 0, seed: int = 0,
               by: str | None = None, samples: Sequence | None = None) -> dict[str, list[str]]:
    """Deterministic split of the labelled images of ``spec`` (a loaded ``DatasetSpec``); returns ``{train, val, test, holdout}``.

    ``by`` is ``"group"`` (whole groups go to one set; default when the spec has a ``group`` rule)
    or ``"file"``; the default falls back to files when there are too few groups for the sets asked
    for (an explicit ``by="group"`` raises instead). Fractions are of images; with groups, whole groups are assigned greedily to reach
    them as closely as possible (at least one group each when the fraction is > 0).
    """
    items = list(samples) if samples is not None else spec.labelled()
    if not items:
        raise DataError("the data set has no labelled images to split", spec.path or spec.root)
    auto = by is None
    if auto:
        by = "group" if spec.group else "file"
    if by not in ("group", "file"):
        raise ConfigError(f"split by {by!r}: use 'group' or 'file'")
    if holdout < 0:
        raise ConfigError(f"holdout {holdout} must be >= 0")
    rng = random.Random(seed)
    n = len(items)
    n_val, n_test = _counts(n, val, test)

    if auto and by == "group" and len({s.group for s in items}) <= (n_val > 0) + (n_test > 0):
        by = "file"  # too few groups (e.g. one place): a group split is impossible, split images
    groups: dict[str, list[str]] = {}
    for s in sorted(items, key=lambda s: s.key):
        g = s.group if by == "group" else s.key
        groups.setdefault(g, []).append(s.key)
    order = sorted(groups)
    rng.shuffle(order)
    if by == "group" and (n_val > 0) + (n_test > 0) >= len(order):
        raise DataError(f"only {len(order)} group(s) ({', '.join(order)}): too few to split by group into "
                        "train/val/test; use by='file' or fewer sets", spec.path or spec.root)

    sets: dict[str, list[str]] = {"train": [], "val": [], "test": [], "holdout": []}
    remaining = list(order)
    for name, target in (("test", n_test), ("val", n_val)):
        taken: list[str] = []
        while target > 0 and remaining:
            size = len(groups[remaining[0]])
            cur = sum(len(groups[g]) for g in taken)
            if taken and abs(cur + size - target) >= abs(cur - target):
                break
            if len(remaining) == 1:  # keep at least one group for training
                break
            taken.append(remaining.pop(0))
        sets[name] = [k for g in taken for k in groups[g]]
    sets["train"] = [k for g in remaining for k in groups[g]]
    if holdout:
        source = "test" if sets["test"] else "val" if sets["val"] else "train"
        pool = sorted(sets[source])
        if holdout > len(pool) - (1 if source == "train" else 0):
            raise ConfigError(f"holdout {holdout} is more than the {len(pool)} image(s) of the {source} set")
        picked = set(rng.sample(pool, holdout))
        sets["holdout"] = sorted(picked)
        sets[source] = [k for k in sets[source] if k not in picked]
    if not sets["train"]:
        raise DataError("the split leaves no training images", spec.path or spec.root)
    return {k: sorted(v) for k, v in sets.items()}


def write_split(split: dict[str, list[str]], path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write a split file atomically (``meta`` goes under ``"_meta"``, ignored by readers)."""
    from terraseg._io import write_json_atomic

    data: dict[str, Any] = {k: list(split.get(k, [])) for k in SPLIT_NAMES}
    if meta:
        data["_meta"] = meta
    return write_json_atomic(path, data)


__all__ = ["load_split", "make_split", "write_split", "SPLIT_NAMES"]
