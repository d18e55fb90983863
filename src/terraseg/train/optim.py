"""Optimizers (SGD, Adam, AdamW) with an optional decoder/head learning-rate multiplier, and
learning-rate schedules (poly, cosine, step, constant), each with a linear warmup.

A schedule is a function of training *progress* in [0, 1]: optimizer steps done / total steps, or,
with a wall-clock budget, the larger of that and time used / budget. The learning rate is therefore
a pure function of the step count (and elapsed time), which makes resumed runs continue exactly.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch.optim.lr_scheduler import LRScheduler


def schedule_factor(cfg: dict, step: int, progress: float) -> float:
    """Learning-rate factor (times the base lr) after ``step`` optimizer steps at ``progress``."""
    name = cfg.get("name", "poly")
    progress = min(max(progress, 0.0), 1.0)
    floor = float(cfg.get("min_lr_factor", 0.0))
    if name == "poly":
        f = floor + (1.0 - floor) * (1.0 - progress) ** float(cfg.get("power", 0.9))
    elif name == "cosine":
        f = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    elif name == "step":
        passed = sum(1 for m in cfg.get("milestones", ()) if progress >= m)
        f = float(cfg.get("gamma", 0.1)) ** passed
    elif name == "constant":
        f = 1.0
    else:  # validated in config
        raise ValueError(f"unknown schedule {name!r}")
    warm = int(cfg.get("warmup_steps", 0))
    if warm > 0 and step < warm:
        start = float(cfg.get("warmup_start_factor", 0.01))
        f *= start + (1.0 - start) * step / warm
    return f


class WarmupSchedule(LRScheduler):
    """``lr = base_lr * schedule_factor(cfg, step, progress)``, stepped once per optimizer step.

    ``total_steps`` may be ``None`` or infinite (a time budget only); ``time_progress`` returns the
    share of the wall-clock budget used so far (0..1), or is ``None``.
    """

    def __init__(self, optimizer, cfg: dict, total_steps: float | None = None,
                 time_progress: Callable[[], float] | None = None, last_epoch: int = -1):
        self.cfg = dict(cfg)
        self.total_steps = total_steps
        self.time_progress = time_progress
        super().__init__(optimizer, last_epoch)

    def progress(self, step: int) -> float:
        p = 0.0
        if self.total_steps is not None and math.isfinite(self.total_steps) and self.total_steps > 0:
            p = step / self.total_steps
        if self.time_progress is not None:
            p = max(p, float(self.time_progress()))
        return p

    def get_lr(self):
        step = max(self.last_epoch, 0)
        f = schedule_factor(self.cfg, step, self.progress(step))
        return [base * f for base in self.base_lrs]

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "time_progress")}

    def load_state_dict(self, state_dict):
        # keep this run's schedule and length: a resumed run may extend training (more epochs or
        # time); the step count and base learning rates carry over
        state = {k: v for k, v in state_dict.items() if k not in ("time_progress", "total_steps", "cfg")}
        self.__dict__.update(state)
        # the optimizer state (restored before) holds the last run's learning rate: recompute it
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = list(lrs)


def param_groups(model: torch.nn.Module, lr: float, head_lr_multiplier: float = 1.0) -> list[dict]:
    """Parameter groups: encoder at ``lr``, decoder/head at ``lr * head_lr_multiplier``.

    Uses ``terraseg.models.param_groups`` to split the model; with a multiplier of 1 (or a model
    that has no encoder/head split) all parameters form one group.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if head_lr_multiplier == 1.0:
        return [{"params": params, "lr": lr, "name": "all"}]
    from terraseg import models

    split = models.param_groups(model)
    enc, head = _encoder_head(split)
    enc = [p for p in enc if p.requires_grad]
    head = [p for p in head if p.requires_grad]
    seen = {id(p) for p in enc} | {id(p) for p in head}
    rest = [p for p in params if id(p) not in seen]
    groups = []
    if enc:
        groups.append({"params": enc, "lr": lr, "name": "encoder"})
    if head or rest:
        groups.append({"params": head + rest, "lr": lr * head_lr_multiplier, "name": "head"})
    return groups


def _encoder_head(split) -> tuple[list, list]:
    """Accept the shapes ``models.param_groups`` may return: a dict {encoder, decoder/head, ...},
    a pair (encoder, head), or a list of optimizer-style dicts with a ``name``."""
    if isinstance(split, dict):
        enc = list(split.get("encoder", []))
        head: list = []
        for k, v in split.items():
            if k != "encoder":
                head += list(v)
        return enc, head
    split = list(split)
    if split and isinstance(split[0], dict):
        enc, head = [], []
        for g in split:
            (enc if str(g.get("name", "")).startswith("enc") else head).extend(list(g["params"]))
        return enc, head
    if len(split) == 2:
        return list(split[0]), list(split[1])
    raise TypeError("terraseg.models.param_groups returned an unexpected structure")


def build_optimizer(groups: Iterable[dict], cfg: dict) -> torch.optim.Optimizer:
    """``cfg`` is the config's ``optimizer`` section; groups carry their own ``lr``."""
    name = cfg["name"]
    wd = float(cfg.get("weight_decay", 0.0))
    groups = list(groups)
    lr = float(cfg["lr"])
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=float(cfg.get("momentum", 0.9)),
                               nesterov=bool(cfg.get("nesterov", False)), weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=tuple(cfg.get("betas", (0.9, 0.999))), weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(cfg.get("betas", (0.9, 0.999))), weight_decay=wd)
    raise ValueError(f"unknown optimizer {name!r}")


__all__ = ["WarmupSchedule", "build_optimizer", "param_groups", "schedule_factor"]
