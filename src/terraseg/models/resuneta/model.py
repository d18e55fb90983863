"""ResUNet-a d6, d7 and the conditioned multitask d6 (Diakogiannis et al. 2020).

Layout (``base_channels`` f = 32 as in the paper, level i has ``f * 2**i`` channels)::

    stem      1x1 ConvNormed(in -> f) + ReLU                                   (full resolution)
    encoder   level i: ResBlockA(f*2^i, dilations[i]), DownSample to level i+1  (d6: 6 levels, d7: 7)
    middle    PSPPooling on the deepest level + ReLU
    decoder   level i: Combine(deeper, encoder level i) + ResBlockA(f*2^i, decoder dilations[i])
    last      concat(stem, decoder level 0) -> PSPPooling(2f -> f) + ReLU -> 1x1 conv to classes (logits)

Dilation rates follow the authors' reference implementation (github.com/feevos/resuneta):
encoder ``(1,3,15,31), (1,3,15,31), (1,3,15), (1,3,5), (1,), (1,)`` (+ ``(1,)`` for d7), decoder from
the bottom ``(1,3,5), (1,3,15), (1,3,15,31) x 3`` (d7 adds a plain ``(1,)`` at level 5). The middle PSP
pooling uses bins (1, 2, 4, 8) for d6 and (1, 2, 4) for d7, the last one (1, 2, 4, 8).
Output stride: 32 (d6), 64 (d7); inputs are padded to it and outputs cropped back.

Encoder (``param_groups``): ``stem``, ``encoder`` and ``downs``; everything else (middle PSP,
decoder, heads) is the head group. No pretrained weights exist: trained from scratch.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from terraseg.models.base import MultitaskOutput, SegmentationModel
from terraseg.models.resuneta.blocks import Combine, ConvNormed, DownSample, PSPPooling, ResBlockA

D6_ENCODER = ((1, 3, 15, 31), (1, 3, 15, 31), (1, 3, 15), (1, 3, 5), (1,), (1,))
D6_DECODER = ((1, 3, 15, 31), (1, 3, 15, 31), (1, 3, 15, 31), (1, 3, 15), (1, 3, 5))  # levels 0..4
D7_ENCODER = D6_ENCODER + ((1,),)
D7_DECODER = D6_DECODER + ((1,),)


class ResUNetA(SegmentationModel):
    """Generic ResUNet-a body; ``ResUNetA_D6`` / ``ResUNetA_D7`` fix the depth. Returns logits."""

    def __init__(self, in_channels: int, num_classes: int, base_channels: int = 32,
                 encoder_dilations: Sequence[Sequence[int]] = D6_ENCODER,
                 decoder_dilations: Sequence[Sequence[int]] = D6_DECODER,
                 middle_bins: Sequence[int] = (1, 2, 4, 8), pad_mode: str = "replicate"):
        super().__init__()
        depth = len(encoder_dilations)
        if len(decoder_dilations) != depth - 1:
            raise ValueError("decoder_dilations needs one entry per level above the bottom")
        self.output_stride = 2 ** (depth - 1)
        self.pad_mode = pad_mode
        ch = [base_channels * 2 ** i for i in range(depth)]
        self.stem = ConvNormed(in_channels, ch[0], 1)
        self.encoder = nn.ModuleList(ResBlockA(ch[i], encoder_dilations[i]) for i in range(depth))
        self.downs = nn.ModuleList(DownSample(ch[i], ch[i + 1]) for i in range(depth - 1))
        self.middle = PSPPooling(ch[-1], ch[-1], middle_bins)
        # decoder modules listed from the bottom up: index j works at level depth-2-j
        levels = list(reversed(range(depth - 1)))
        self.combines = nn.ModuleList(Combine(ch[i + 1], ch[i], ch[i]) for i in levels)
        self.decoder = nn.ModuleList(ResBlockA(ch[i], decoder_dilations[i]) for i in levels)
        self.last_psp = PSPPooling(2 * ch[0], ch[0], (1, 2, 4, 8))
        self._build_head(ch[0], num_classes)

    def _build_head(self, channels: int, num_classes: int) -> None:
        self.head = nn.Conv2d(channels, num_classes, 1)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(concat(stem, decoder level 0), relu(last PSP pooling of it))``."""
        stem = F.relu(self.stem(x))
        skips = []
        y = stem
        for i, block in enumerate(self.encoder):
            y = block(y)
            if i < len(self.downs):
                skips.append(y)
                y = self.downs[i](y)
        y = F.relu(self.middle(y))
        for combine, block in zip(self.combines, self.decoder):
            y = block(combine(y, skips.pop()))
        cat = torch.cat([stem, y], dim=1)
        return cat, F.relu(self.last_psp(cat))

    def forward_padded(self, x: torch.Tensor):
        return self.head(self.features(x)[1])

    def encoder_modules(self) -> list[nn.Module]:
        return [self.stem, self.encoder, self.downs]


class ResUNetA_D6(ResUNetA):
    """ResUNet-a d6 (6 levels, output stride 32). Options: ``base_channels`` (32), ``pad_mode``."""

    def __init__(self, in_channels: int, num_classes: int, base_channels: int = 32, pad_mode: str = "replicate"):
        super().__init__(in_channels, num_classes, base_channels, D6_ENCODER, D6_DECODER, (1, 2, 4, 8), pad_mode)


class ResUNetA_D7(ResUNetA):
    """ResUNet-a d7 (7 levels, output stride 64). Options: ``base_channels`` (32), ``pad_mode``."""

    def __init__(self, in_channels: int, num_classes: int, base_channels: int = 32, pad_mode: str = "replicate"):
        super().__init__(in_channels, num_classes, base_channels, D7_ENCODER, D7_DECODER, (1, 2, 4), pad_mode)


def _head(in_channels: int, mid: int, out_channels: int, n_conv: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = in_channels
    for _ in range(n_conv):
        layers += [ConvNormed(c, mid, 3), nn.ReLU(inplace=True)]
        c = mid
    layers.append(nn.Conv2d(c, out_channels, 1))
    return nn.Sequential(*layers)


class ResUNetA_D6_Multitask(ResUNetA):
    """ResUNet-a d6 with conditioned multitask outputs ("causal" multitasking of the paper).

    ``forward(x)`` returns ``terraseg.models.MultitaskOutput(segmentation, boundary, distance, color)``,
    each cropped to the input size:

    * ``distance`` (N, K, H, W), sigmoid, in [0, 1] per class: normalised distance transform of each
      class mask. Computed from the features ``F = concat(stem, decoder level 0)`` (2 x ConvNormed 3x3
      + ReLU, 1x1 conv).
    * ``boundary`` (N, K, H, W), softmax over classes (sums to 1): class of the boundary pixels,
      conditioned on the distance: computed from ``concat(P, distance)`` where ``P`` is the last PSP
      pooling of ``F``. With ``boundary_activation="sigmoid"`` (the authors' code) each class channel
      is an independent [0, 1] value instead, which suits non-exclusive per-class 0/1 boundary maps.
    * ``color`` (N, 3, H, W), sigmoid, in [0, 1]: the input's colour in HSV (each channel scaled to
      [0, 1]), computed from ``F`` by a 1x1 convolution.
    * ``segmentation`` (N, K, H, W), softmax over classes (sums to 1): conditioned on all three,
      computed from ``concat(P, boundary, distance, color)`` (2 x ConvNormed 3x3 + ReLU, 1x1 conv).

    The fields are probabilities/values, not logits: train with losses on probabilities (e.g. the
    paper's Tanimoto loss, or NLL on ``log(segmentation.clamp_min(1e-7))``).
    """

    def __init__(self, in_channels: int, num_classes: int, base_channels: int = 32, pad_mode: str = "replicate",
                 boundary_activation: str = "softmax"):
        if boundary_activation not in ("softmax", "sigmoid"):
            raise ValueError(f"boundary_activation must be 'softmax' or 'sigmoid', not {boundary_activation!r}")
        self.boundary_activation = boundary_activation
        super().__init__(in_channels, num_classes, base_channels, D6_ENCODER, D6_DECODER, (1, 2, 4, 8), pad_mode)

    def _build_head(self, channels: int, num_classes: int) -> None:
        k = num_classes
        self.distance_head = _head(2 * channels, channels, k, 2)
        self.boundary_head = _head(channels + k, channels, k, 1)
        self.color_head = nn.Conv2d(2 * channels, 3, 1)
        self.segmentation_head = _head(channels + 2 * k + 3, channels, k, 2)

    def forward_padded(self, x: torch.Tensor) -> MultitaskOutput:
        feats, pooled = self.features(x)
        distance = torch.sigmoid(self.distance_head(feats))
        b_logits = self.boundary_head(torch.cat([pooled, distance], dim=1))
        boundary = torch.softmax(b_logits, dim=1) if self.boundary_activation == "softmax" else torch.sigmoid(b_logits)
        color = torch.sigmoid(self.color_head(feats))
        seg = torch.softmax(self.segmentation_head(torch.cat([pooled, boundary, distance, color], dim=1)), dim=1)
        return MultitaskOutput(segmentation=seg, boundary=boundary, distance=distance, color=color)
