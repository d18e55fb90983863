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
        _refuse(bad, path)


def _refuse(bad: dict[str, int], path) -> None:
    first = next(iter(bad))
    raise ModelError(f"the weights hold {sum(bad.values())} NaN or infinite value(s) in {len(bad)} tensor(s), "
                     f"e.g. {first!r}: the model diverged in training and cannot be used", path)


def check_finite_file(weights: str | Path) -> None:
    """``check_finite`` on a safetensors file, read with numpy (no torch import); tensors numpy cannot
    hold (bf16) are left to the loader's own check."""
    import numpy as np
    from safetensors import SafetensorError, safe_open

    from terraseg.errors import ModelError, first_line

    bad = {}
    try:
        with safe_open(str(weights), framework="numpy") as f:
            for name in f.keys():
                try:
                    t = f.get_tensor(name)
                except (TypeError, ValueError):  # pragma: no cover - bf16
                    continue
                if np.issubdtype(t.dtype, np.floating):
                    n = int((~np.isfinite(t)).sum())
                    if n:
                        bad[name] = n
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"unreadable weights ({first_line(exc)})", weights) from None
    if bad:
        _refuse(bad, weights)


__all__ = ["check_finite", "check_finite_file", "nonfinite_counts"]
