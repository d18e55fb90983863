"""Training: ``train(config, overrides) -> TrainResult`` (Lightning underneath).

Light at import time (the CLI's ``--print-config`` imports ``terraseg.train.config`` without torch);
``train``, ``train_sample`` and ``TrainResult`` are loaded on first use.
"""

from __future__ import annotations

__all__ = ["train", "train_sample", "TrainResult", "load_config", "default_config", "SAMPLE_CONFIG"]


def __getattr__(name: str):
    if name in ("train", "train_sample", "TrainResult", "SAMPLE_CONFIG"):
        from terraseg.train import run

        return getattr(run, name)
    if name in ("load_config", "default_config"):
        from terraseg.train import config

        return getattr(config, name)
    raise AttributeError(f"module 'terraseg.train' has no attribute {name!r}")
