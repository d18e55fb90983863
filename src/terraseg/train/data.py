"""Training data: samples from the dataset description + split, deterministic per-item seeding,
and a LightningDataModule around ``terraseg.data.dataset.SegmentationDataset``.

Determinism: the training sampler yields ``(epoch, index)`` pairs and every item is produced under
random generators seeded from ``(seed, epoch, index)`` (numpy, random, torch and the dataset's own
albumentations pipeline). Crops and augmentations of epoch *e* are therefore the same whether the run
went straight through or was resumed, and independent of the number of workers.
"""

from __future__ import annotations

import random
from typing import Any, Iterator, Sequence

import numpy as np
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from terraseg.errors import ConfigError, DataError
from terraseg.normalisation import Normaliser

DEFAULT_AUGMENT = [
    {"name": "HorizontalFlip", "p": 0.5},
    {"name": "VerticalFlip", "p": 0.5},
    {"name": "RandomRotate90", "p": 0.5},
]


def resolve_augment(value: Any, spec=None) -> list[dict] | None:
    """``"default"``: the dataset's own ``augment`` list when it has one, else flips + 90° rotations."""
    if value == "default":
        own = getattr(spec, "augment", None)
        return [dict(a) for a in (own or DEFAULT_AUGMENT)]
    return value or None


def _item_seed(seed: int, epoch: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(1)[0])


def _find_composes(obj: Any) -> list:
    """Albumentations pipelines held by a dataset (they keep their own RNG, see A.Compose(seed=))."""
    found = []
    for v in getattr(obj, "__dict__", {}).values():
        if hasattr(v, "set_random_seed") and hasattr(v, "transforms"):
            found.append(v)
    return found


class SeededItems(Dataset):
    """Wraps a dataset; ``ds[(epoch, i)]`` returns ``base[i]`` produced under a fixed seed."""

    def __init__(self, base: Dataset, seed: int = 0, extra=None):
        self.base = base
        self.seed = int(seed)
        self.extra = extra  # optional callable (image, mask) -> dict of extra targets

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key):
        epoch, index = key if isinstance(key, tuple) else (0, key)
        s = _item_seed(self.seed, epoch, index)
        np_state, py_state, t_state = np.random.get_state(), random.getstate(), torch.get_rng_state()
        try:
            np.random.seed(s % (2 ** 32))
            random.seed(s)
            # the CPU generator only: torch.manual_seed also queues a CUDA seeding that records a
            # stack trace each call (1.3 ms per item), and items are made on the CPU
            torch.default_generator.manual_seed(s)
            for comp in _find_composes(self.base):
                comp.set_random_seed(s % (2 ** 32))
            item = self.base[index]
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
            torch.set_rng_state(t_state)
        if self.extra is not None:
            image, mask = item[0], item[1]
            return image, mask, self.extra(image, mask)
        return item


class EpochSampler(Sampler):
    """Yields ``(epoch, index)``; shuffled with a generator seeded by ``(seed, epoch)``.

    Lightning calls ``set_epoch`` before each epoch. Under DDP every rank takes every
    ``world_size``-th index of the same permutation.
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1,
                 pad: bool = True):
        self.n, self.seed, self.shuffle = int(n), int(seed), shuffle
        self.rank, self.world_size = rank, world_size
        # pad: every rank gets as many items (training steps must match across ranks); without it
        # (validation) no item is seen twice, so metrics summed over ranks count each image once
        self.pad = pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _order(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(_item_seed(self.seed + 1_000_003, self.epoch, 0))
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        if self.world_size > 1:
            per = -(-self.n // self.world_size)
            if self.pad:
                order = order + order[: per * self.world_size - self.n]
            order = order[self.rank::self.world_size]
        return order

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(self.epoch, i) for i in self._order()])

    def __len__(self) -> int:
        return len(self._order())


def select_samples(spec, cfg_data: dict, seed: int = 0) -> tuple[list, list]:
    """Training and validation samples from the split file (or a seeded holdout without one)."""
    items = [s for s in spec.items() if s.mask is not None]
    dataset_path = cfg_data.get("dataset")
    if not items:
        raise DataError("the data set lists no labelled images (no image has a mask)", dataset_path)
    split_path = cfg_data.get("split") or getattr(spec, "split_file", None)
    if split_path:
        from terraseg.data.split import load_split

        split = load_split(split_path)
        by_key = {s.key: s for s in items}

        def pick(names: Sequence[str], role: str) -> list:
            keys: list[str] = []
            for n in names:
                if n not in split:
                    raise ConfigError(f"split file has no {n!r} list (it has {', '.join(split) or 'none'}); "
                                      f"set data.{role}_splits", split_path)
                keys += list(split[n])
            missing = [k for k in keys if k not in by_key]
            if missing:
                raise DataError(f"split file names {len(missing)} image(s) not in the data set (or without a "
                                f"mask), e.g. {missing[0]!r}", split_path)
            return [by_key[k] for k in keys]

        train = pick(cfg_data["train_splits"], "train")
        val = pick(cfg_data["val_splits"], "val")
    else:
        train, val = _holdout(spec, items, float(cfg_data.get("val_fraction", 0.2)), seed)
    if not train:
        raise DataError("the training split is empty", split_path or dataset_path)
    if not val:
        raise DataError("the validation split is empty (add images to the val split or raise "
                        "data.val_fraction)", split_path or dataset_path)
    return train, val


def _holdout(spec, items: list, fraction: float, seed: int) -> tuple[list, list]:
    """Hold out about ``fraction`` of the images for validation (``terraseg.data.split.make_split``:
    whole groups when the dataset has a ``group`` rule)."""
    if fraction <= 0:
        return items, []
    from terraseg.data.split import make_split

    split = make_split(spec, val=fraction, test=0.0, seed=seed, samples=items)
    val_keys = set(split["val"])
    return [s for s in items if s.key not in val_keys], [s for s in items if s.key in val_keys]


class SegmentationDataModule(pl.LightningDataModule):
    """Train/val loaders for the Lightning Trainer (per-rank sampling under DDP)."""

    def __init__(self, cfg: dict, spec, train_samples: list, val_samples: list, multitask: bool = False,
                 norm: tuple[list[float], list[float]] | None = None):
        super().__init__()
        self.cfg = cfg
        self.spec = spec
        self.train_samples = train_samples
        self.val_samples = val_samples
        self.multitask = multitask
        # the one normalisation rule (terraseg.normalisation): the dataset's statistics or the defaults,
        # or ``norm`` (the statistics a model.init_from source was trained with)
        self.mean, self.std = Normaliser.from_spec(spec, *(norm or (None, None))).lists()

    def _extra(self):
        if not self.multitask:
            return None
        from terraseg.train.targets import MultitaskTargets

        return MultitaskTargets(self.spec.num_classes, self.spec.ignore_index, self.mean, self.std)

    def train_dataset(self):
        from terraseg.data.dataset import SegmentationDataset

        d = self.cfg["data"]
        sampling = d.get("sampling") or {}
        base = SegmentationDataset(self.spec, self.train_samples, crop_size=d["crop_size"],
                                   augment=resolve_augment(d["augment"], self.spec), mean=self.mean, std=self.std,
                                   samples_per_epoch=d["samples_per_epoch"],
                                   sampling=sampling.get("mode", "uniform"),
                                   class_balance=sampling.get("class_balance", 0.0), cache_bytes=self._cache_bytes())
        return SeededItems(base, self.cfg["trainer"]["seed"], extra=self._extra())

    def val_dataset(self):
        from terraseg.data.dataset import SegmentationDataset

        d = self.cfg["data"]
        base = SegmentationDataset(self.spec, self.val_samples, crop_size=d["val_crop_size"], augment=None,
                                   mean=self.mean, std=self.std, cache_bytes=self._cache_bytes())
        return SeededItems(base, self.cfg["trainer"]["seed"] + 1, extra=self._extra())

    def _cache_bytes(self) -> int:
        """Decoded-image cache per process: a quarter of the free memory shared by the loading
        processes (the main one and each worker of the two loaders), at most 2 GiB each."""
        import psutil

        processes = 1 + 2 * int(self.cfg["data"]["num_workers"])
        return int(min(2 << 30, psutil.virtual_memory().available / 4 / processes))

    def _loader_args(self) -> dict:
        workers = self.cfg["data"]["num_workers"]
        # persistent workers keep their decoded-image caches from one epoch to the next
        return {"num_workers": workers, "pin_memory": torch.cuda.is_available(), "persistent_workers": workers > 0}

    def train_loader(self, rank: int = 0, world_size: int = 1) -> DataLoader:
        d = self.cfg["data"]
        train = self.train_dataset()
        per_rank = len(train) // max(world_size, 1)
        return DataLoader(train, batch_size=d["batch_size"],
                          sampler=EpochSampler(len(train), self.cfg["trainer"]["seed"], True, rank, world_size),
                          drop_last=per_rank > d["batch_size"], **self._loader_args())

    def val_loader(self, rank: int = 0, world_size: int = 1) -> DataLoader:
        d = self.cfg["data"]
        val = self.val_dataset()
        bs = d["batch_size"] if d["val_crop_size"] else 1  # whole images may differ in size
        return DataLoader(val, batch_size=bs, sampler=EpochSampler(len(val), 0, False, rank, world_size, pad=False),
                          **self._loader_args())

    def norm_for_bundle(self) -> tuple[list[float], list[float]]:
        """The per-band mean/std the training data were normalised with (for the bundle)."""
        return self.mean, self.std

    def _rank(self) -> tuple[int, int]:
        t = self.trainer
        return (t.global_rank, t.world_size) if t is not None else (0, 1)

    def train_dataloader(self):
        return self.train_loader(*self._rank())

    def val_dataloader(self):
        return self.val_loader(*self._rank())


__all__ = ["SegmentationDataModule", "EpochSampler", "SeededItems", "select_samples", "DEFAULT_AUGMENT",
           "resolve_augment"]

