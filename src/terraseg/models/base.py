"""Small base classes shared by every terraseg architecture.

``SegmentationModel`` owns the "any input size" behaviour: ``forward`` pads the input on the bottom and
right to a multiple of ``output_stride`` (``F.pad`` with sizes computed from the input shape, so ONNX
export keeps H and W dynamic), runs ``forward_padded`` and crops every output back to the input size.
Padding lives in ``forward`` only, so it adds no parameters or buffers and never changes
``state_dict`` keys.

Subclasses implement ``forward_padded(x)`` and ``encoder_modules()`` (the modules that count as the
encoder for ``terraseg.models.param_groups``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

PAD_MODES = ("replicate", "reflect", "constant")


class MultitaskOutput(NamedTuple):
    """Output of the conditioned multitask ResUNet-a (``resuneta_d6_multitask``).

    All fields are ``(N, ·, H, W)`` tensors at the input resolution:

    * ``segmentation`` – ``(N, K, H, W)`` class probabilities (softmax over K, each pixel sums to 1);
      this is what ``terraseg.models.probabilities`` returns.
    * ``boundary`` – ``(N, K, H, W)`` class probabilities (softmax over K) of the boundary task: the
      training target is the one-hot class of boundary pixels (e.g. the class whose region a boundary
      pixel belongs to); each pixel sums to 1. With the option ``boundary_activation="sigmoid"`` it is
      instead one independent [0, 1] value per class (per-class 0/1 boundary maps, as in the authors'
      code).
    * ``distance`` – ``(N, K, H, W)`` in [0, 1] (sigmoid, one channel per class): the normalised
      distance transform of each class mask (0 outside / at the edge, 1 at the class's interior maximum).
    * ``color`` – ``(N, 3, H, W)`` in [0, 1] (sigmoid): reconstruction of the input's colour in HSV
      (hue, saturation, value each scaled to [0, 1]).
    """

    segmentation: torch.Tensor
    boundary: torch.Tensor
    distance: torch.Tensor
    color: torch.Tensor


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "replicate") -> torch.Tensor:
    """Pad ``x`` (N, C, H, W) on the bottom/right so that H and W are multiples of ``multiple``."""
    if multiple <= 1:
        return x
    h, w = x.shape[-2], x.shape[-1]
    pad_h = (multiple - h % multiple) % multiple
    pad_w = (multiple - w % multiple) % multiple
    if mode == "constant":
        return F.pad(x, (0, pad_w, 0, pad_h), mode="constant", value=0.0)
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def grid_pool(x: torch.Tensor, bins: int, reduce: str = "max") -> torch.Tensor:
    """Pool ``x`` (N, C, H, W) into a ``bins x bins`` grid of blocks -> (N, C, bins, bins).

    Same result as ``adaptive_{max,avg}_pool2d(x, bins)`` when H and W are multiples of ``bins``;
    otherwise the map is first edge-padded to the next multiple. Written with pad/reshape/reduce only,
    so it exports to ONNX with dynamic H and W (adaptive pooling to sizes other than 1 does not).
    """
    n, c, h, w = x.shape
    if bins == 1:
        return x.amax(dim=(2, 3), keepdim=True) if reduce == "max" else x.mean(dim=(2, 3), keepdim=True)
    pad_h = (bins - h % bins) % bins
    pad_w = (bins - w % bins) % bins
    xp = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    blocks = xp.reshape(n, c, bins, (h + pad_h) // bins, bins, (w + pad_w) // bins)
    return blocks.amax(dim=(3, 5)) if reduce == "max" else blocks.mean(dim=(3, 5))


class GridAvgPool2d(nn.Module):
    """Export-friendly stand-in for ``nn.AdaptiveAvgPool2d(k)`` (square ``k``), see ``grid_pool``."""

    def __init__(self, output_size: int):
        super().__init__()
        self.output_size = int(output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grid_pool(x, self.output_size, "mean")

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


def replace_adaptive_pooling(module: nn.Module) -> int:
    """Swap every square ``nn.AdaptiveAvgPool2d(k)`` inside ``module`` for ``GridAvgPool2d(k)``.

    Pooling layers have no weights, so state-dict keys do not change. Returns the number replaced.
    """
    replaced = 0
    for name, child in list(module.named_children()):
        size = getattr(child, "output_size", None)
        if isinstance(child, nn.AdaptiveAvgPool2d):
            k = size if isinstance(size, int) else (size[0] if size and size[0] == size[1] else None)
            if k is not None and k >= 1:
                setattr(module, name, GridAvgPool2d(k))
                replaced += 1
                continue
        replaced += replace_adaptive_pooling(child)
    return replaced


def _crop(t: torch.Tensor, h, w) -> torch.Tensor:
    return t[..., :h, :w]


class SegmentationModel(nn.Module):
    """Base class: pad to the stride, run the network, crop back.

    Attributes set by subclasses: ``output_stride`` (int, the factor H and W must be divisible by),
    ``pad_mode`` (``"replicate"`` default, ``"reflect"`` or ``"constant"`` zeros). Replicate padding is
    the default because it works for any input size (reflect needs the pad to be smaller than the
    input) and exports to ONNX ``Pad(mode="edge")``.
    """

    output_stride: int = 32
    pad_mode: str = "replicate"

    def forward(self, x: torch.Tensor):
        h, w = x.shape[-2], x.shape[-1]
        out = self.forward_padded(pad_to_multiple(x, self.output_stride, self.pad_mode))
        if isinstance(out, MultitaskOutput):
            return MultitaskOutput(*(_crop(t, h, w) for t in out))
        return _crop(out, h, w)

    def forward_padded(self, x: torch.Tensor):  # pragma: no cover - abstract
        raise NotImplementedError

    def encoder_modules(self) -> list[nn.Module]:  # pragma: no cover - abstract
        """Modules whose parameters form the encoder group of ``param_groups``."""
        raise NotImplementedError
