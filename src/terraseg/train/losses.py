"""Segmentation losses and their weighted sums.

* ``ce``: ``torch.nn.functional.cross_entropy`` (class weights, ignore index, label smoothing).
* ``focal``, ``dice``, ``lovasz``: segmentation-models-pytorch's multiclass losses (ignore index).
* ``tanimoto``: Tanimoto with complement ("dual" Tanimoto) from Diakogiannis et al. 2020,
  ResUNet-a (ISPRS J. Photogramm. 162), eqs. 3-5: ``T(p, l) = Σ_j w_j Σ_i p_ij l_ij /
  Σ_j w_j Σ_i (p_ij² + l_ij² − p_ij l_ij)`` with ``w_j = V_j^-2`` (V_j: the class volume in the
  reference), and ``T~ = (T(p, l) + T(1 − p, 1 − l)) / 2``; the loss is ``1 − T~``.

Every loss takes the model's segmentation output, either logits (``from_logits=True``) or class
probabilities (the multitask ResUNet-a), and an int64 target ``(N, H, W)`` whose ``ignore_index``
pixels contribute nothing (neither loss nor gradient).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

_EPS = 1e-7


def _valid_onehot(target: torch.Tensor, num_classes: int, ignore_index: int | None):
    """One-hot target (N, C, H, W) float and valid mask (N, 1, H, W) float."""
    if ignore_index is not None:
        valid = target != ignore_index
    else:
        valid = torch.ones_like(target, dtype=torch.bool)
    safe = torch.where(valid, target, torch.zeros_like(target)).clamp(0, num_classes - 1)
    onehot = F.one_hot(safe, num_classes).permute(0, 3, 1, 2).float()
    v = valid.unsqueeze(1).float()
    return onehot * v, v


def tanimoto(p: torch.Tensor, l: torch.Tensor, valid: torch.Tensor | None = None,
             class_weights: bool = True, smooth: float = 1e-5) -> torch.Tensor:
    """Tanimoto coefficient per sample (N,) between maps ``p`` and ``l`` of shape (N, C, H, W).

    ``class_weights`` applies the paper's inverse-squared-volume weights; classes absent from a
    sample's reference take the largest weight of the present classes.
    """
    if valid is not None:
        p = p * valid
        l = l * valid
    dims = (2, 3)
    pl = (p * l).sum(dims)
    pp = (p * p).sum(dims)
    ll = (l * l).sum(dims)
    if class_weights:
        vol = l.sum(dims)
        w = 1.0 / vol.clamp_min(_EPS) ** 2
        present = vol > 0
        wmax = torch.where(present, w, torch.zeros_like(w)).amax(dim=1, keepdim=True)
        wmax = torch.where(wmax > 0, wmax, torch.ones_like(wmax))
        w = torch.where(present, w, wmax)
        w = w / w.amax(dim=1, keepdim=True)  # scale-free (T is invariant to a common factor)
    else:
        w = torch.ones_like(pl)
    num = (w * pl).sum(1) + smooth
    den = (w * (pp + ll - pl)).sum(1) + smooth
    return num / den


def tanimoto_dual_loss(p: torch.Tensor, l: torch.Tensor, valid: torch.Tensor | None = None,
                       class_weights: bool = True) -> torch.Tensor:
    """``1 − (T(p, l) + T(1 − p, 1 − l)) / 2`` averaged over the batch; ``p, l`` in [0, 1]."""
    t = tanimoto(p, l, valid, class_weights)
    tc = tanimoto(1.0 - p, 1.0 - l, valid, class_weights)
    return 1.0 - 0.5 * (t + tc).mean()


class TanimotoLoss(nn.Module):
    """Tanimoto-with-complement loss for multiclass segmentation (softmax over classes)."""

    def __init__(self, ignore_index: int | None = 255, class_weights: bool = True):
        super().__init__()
        self.ignore_index = ignore_index
        self.class_weights = class_weights

    def forward(self, output: torch.Tensor, target: torch.Tensor, from_logits: bool = True) -> torch.Tensor:
        probs = output.float().softmax(1) if from_logits else output.float()
        onehot, valid = _valid_onehot(target, probs.shape[1], self.ignore_index)
        return tanimoto_dual_loss(probs, onehot, valid, self.class_weights)


class CrossEntropy(nn.Module):
    def __init__(self, ignore_index: int | None = 255, class_weights: Sequence[float] | None = None,
                 label_smoothing: float = 0.0):
        super().__init__()
        self.ignore_index = -100 if ignore_index is None else ignore_index
        self.label_smoothing = label_smoothing
        self.register_buffer("weight", torch.tensor(class_weights, dtype=torch.float32)
                             if class_weights is not None else None, persistent=False)

    def forward(self, output: torch.Tensor, target: torch.Tensor, from_logits: bool = True) -> torch.Tensor:
        # log-probabilities are valid logits: softmax(log p) == p
        logits = output.float() if from_logits else output.float().clamp_min(_EPS).log()
        return F.cross_entropy(logits, target, weight=self.weight, ignore_index=self.ignore_index,
                               label_smoothing=self.label_smoothing)


class _SmpLoss(nn.Module):
    """Wraps an smp multiclass loss; probability inputs are converted to what smp expects."""

    def __init__(self, kind: str, ignore_index: int | None, class_weights=None, gamma: float = 2.0):
        super().__init__()
        from segmentation_models_pytorch import losses as L

        self.kind = kind
        if kind == "dice":
            self.from_logits_fn = L.DiceLoss("multiclass", from_logits=True, ignore_index=ignore_index,
                                             class_weights=class_weights)
            self.from_probs_fn = L.DiceLoss("multiclass", from_logits=False, ignore_index=ignore_index,
                                            class_weights=class_weights)
        elif kind == "focal":
            # smp's multiclass focal is a per-class sigmoid focal loss; probabilities go in as logit(p)
            self.from_logits_fn = L.FocalLoss("multiclass", gamma=gamma, ignore_index=ignore_index,
                                              class_weights=class_weights)
            self.from_probs_fn = None
        elif kind == "lovasz":
            # smp's LovaszLoss always applies softmax; probabilities go in as log(p)
            self.from_logits_fn = L.LovaszLoss("multiclass", ignore_index=ignore_index)
            self.from_probs_fn = None
        else:  # pragma: no cover
            raise ValueError(kind)

    def forward(self, output: torch.Tensor, target: torch.Tensor, from_logits: bool = True) -> torch.Tensor:
        output = output.float()
        if from_logits:
            return self.from_logits_fn(output, target)
        if self.from_probs_fn is None:
            p = output.clamp(_EPS, 1 - _EPS)
            return self.from_logits_fn(torch.logit(p) if self.kind == "focal" else p.log(), target)
        return self.from_probs_fn(output, target)


def build_term(name: str, ignore_index: int | None = 255, class_weights: Sequence[float] | None = None,
               label_smoothing: float = 0.0, focal_gamma: float = 2.0, tanimoto_class_weights: bool = True) -> nn.Module:
    """One loss by name (``ce``, ``focal``, ``dice``, ``lovasz``, ``tanimoto``)."""
    cw = list(class_weights) if class_weights is not None else None
    if name == "ce":
        return CrossEntropy(ignore_index, cw, label_smoothing)
    if name in ("dice", "focal"):
        return _SmpLoss(name, ignore_index, cw, gamma=focal_gamma)
    if name == "lovasz":
        return _SmpLoss(name, ignore_index)
    if name == "tanimoto":
        return TanimotoLoss(ignore_index, tanimoto_class_weights)
    from terraseg.errors import ConfigError

    raise ConfigError(f"loss.terms: unknown loss {name!r}")


class CombinedLoss(nn.Module):
    """Weighted sum of losses. ``forward`` returns the total; ``last`` holds each term's value."""

    def __init__(self, terms: dict[str, float], ignore_index: int | None = 255,
                 class_weights: Sequence[float] | None = None, label_smoothing: float = 0.0,
                 focal_gamma: float = 2.0, tanimoto_class_weights: bool = True):
        super().__init__()
        self.weights = dict(terms)
        self.ignore_index = ignore_index
        self.terms = nn.ModuleDict({
            n: build_term(n, ignore_index, class_weights, label_smoothing, focal_gamma, tanimoto_class_weights)
            for n in terms
        })
        self.last: dict[str, torch.Tensor] = {}

    def forward(self, output: torch.Tensor, target: torch.Tensor, from_logits: bool = True) -> torch.Tensor:
        if self.ignore_index is not None and not bool((target != self.ignore_index).any()):
            # a batch with no labelled pixel: contribute nothing (but keep the graph)
            self.last = {n: output.new_zeros(()) for n in self.terms}
            return output.sum() * 0.0
        total = None
        self.last = {}
        for name, fn in self.terms.items():
            value = fn(output, target, from_logits=from_logits)
            self.last[name] = value.detach()
            total = self.weights[name] * value if total is None else total + self.weights[name] * value
        return total


def build_loss(loss_cfg: dict, ignore_index: int | None, class_weights: Sequence[float] | None = None) -> CombinedLoss:
    """Build the loss from the config's ``loss`` section (class weights already resolved)."""
    return CombinedLoss(loss_cfg["terms"], ignore_index=ignore_index, class_weights=class_weights,
                        label_smoothing=loss_cfg.get("label_smoothing", 0.0),
                        focal_gamma=loss_cfg.get("focal_gamma", 2.0),
                        tanimoto_class_weights=loss_cfg.get("tanimoto_class_weights", True))


__all__ = ["CombinedLoss", "CrossEntropy", "TanimotoLoss", "build_loss", "build_term", "tanimoto",
           "tanimoto_dual_loss"]
