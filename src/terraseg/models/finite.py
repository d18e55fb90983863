"""Refuse weights holding NaN or infinite values (a diverged training run): such a model predicts
garbage, so saving, predicting, evaluating and exporting stop with one line instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from terraseg.errors import ModelError


def nonfinite_counts(state: Mapping[str, Any]) -> dict[str, int]:
    """``{tensor name: number of NaN/inf values}`` of the floating-point tensors that have any."""
    import torch

    bad = {}
    for name, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            n = int((~torch.isfinite(t)).sum())
            if n:
                bad[name] = n
    return bad


def check_finite(state: Mapping[str, Any], path: str | Path | None = None) -> None:
    """Raise ``ModelError`` when any weight of ``state`` (a state dict) is NaN or infinite."""
    bad = nonfinite_counts(state)
    if bad:
        first = next(iter(bad))
        raise ModelError(f"the weights hold {sum(bad.values())} NaN or infinite value(s) in {len(bad)} tensor(s), "
                         f"e.g. {first!r}: the model diverged in training and cannot be used", path)


__all__ = ["check_finite", "nonfinite_counts"]
