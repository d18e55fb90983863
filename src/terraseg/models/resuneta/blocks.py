"""Building blocks of ResUNet-a (Diakogiannis, Waldner, Caccetta & Wu, 2020, ISPRS J. 162:94-114).

* ``ConvNormed``: convolution (no bias) + batch norm.
* ``ResBlockA``: ``x + sum_d F_d(x)`` where each branch ``F_d`` is a pre-activation residual unit
  (BN-ReLU-conv3x3(dilation d)-BN-ReLU-conv3x3(dilation d)); the branches with different dilation
  rates run in parallel, so one block sees several receptive fields at once.
* ``PSPPooling``: max pooling of the whole map into 1x1, 2x2, 4x4 and 8x8 blocks (``bins``), each
  broadcast back to full size and reduced by a 1x1 ``ConvNormed`` to ``channels/len(bins)``;
  concatenated with the input and fused by a 1x1 ``ConvNormed``.
* ``DownSample``: 3x3 convolution, stride 2, doubling the channels (as in the authors' code).
* ``Combine``: nearest x2 upsampling + 1x1 ``ConvNormed`` of the deeper map, ReLU, concatenation with
  the skip connection, 1x1 ``ConvNormed``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from terraseg.models.base import grid_pool


class ConvNormed(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 dilation: int = 1):
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                      bias=False),
            nn.BatchNorm2d(out_channels),
        )


class _PreActBranch(nn.Sequential):
    def __init__(self, channels: int, dilation: int):
        super().__init__(
            nn.BatchNorm2d(channels), nn.ReLU(inplace=False),
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=True),
        )


class ResBlockA(nn.Module):
    """Residual block with parallel atrous branches: ``x + sum(branch_d(x) for d in dilations)``."""

    def __init__(self, channels: int, dilations: Sequence[int] = (1,)):
        super().__init__()
        self.dilations = tuple(int(d) for d in dilations)
        self.branches = nn.ModuleList(_PreActBranch(channels, d) for d in self.dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for branch in self.branches:
            out = out + branch(x)
        return out


def block_max_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Max over a ``bins x bins`` grid of blocks, broadcast back to ``x``'s size.

    Built on ``terraseg.models.base.grid_pool`` (pad/reshape/amax, no adaptive pooling), so it exports
    to ONNX with dynamic H and W; nearest upsampling by the block size restores the input size.
    """
    n, c, h, w = x.shape
    pooled = grid_pool(x, bins, "max")
    if bins == 1:
        return pooled.expand(n, c, h, w)
    pad_h = (bins - h % bins) % bins
    pad_w = (bins - w % bins) % bins
    bh, bw = (h + pad_h) // bins, (w + pad_w) // bins
    out = pooled[:, :, :, None, :, None].expand(n, c, bins, bh, bins, bw).reshape(n, c, bins * bh, bins * bw)
    return out[:, :, :h, :w]


class PSPPooling(nn.Module):
    """Pyramid scene parsing pooling with max pooling (ResUNet-a flavour)."""

    def __init__(self, in_channels: int, out_channels: int, bins: Sequence[int] = (1, 2, 4, 8)):
        super().__init__()
        self.bins = tuple(int(b) for b in bins)
        branch = max(out_channels // len(self.bins), 1)
        self.convs = nn.ModuleList(ConvNormed(in_channels, branch, 1) for _ in self.bins)
        self.fuse = ConvNormed(in_channels + branch * len(self.bins), out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x] + [conv(block_max_pool(x, b)) for conv, b in zip(self.convs, self.bins)]
        return self.fuse(torch.cat(feats, dim=1))


class DownSample(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Combine(nn.Module):
    """Upsample the deeper map x2, ReLU, concatenate with the skip, fuse with a 1x1 ConvNormed."""

    def __init__(self, deep_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.up = ConvNormed(deep_channels, out_channels, 1)
        self.fuse = ConvNormed(out_channels + skip_channels, out_channels, 1)

    def forward(self, deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.relu(self.up(F.interpolate(deep, scale_factor=2.0, mode="nearest")))
        return self.fuse(torch.cat([up, skip], dim=1))
