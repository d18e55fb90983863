"""Classic U-Net (Ronneberger, Fischer & Brox, 2015), written out in full.

Contracting path: ``depth`` times [two 3x3 convolutions + ReLU, 2x2 max pool], the number of channels
doubling at each level (64, 128, 256, 512 and 1024 at the bottom for the paper's ``depth=4``).
Expanding path: 2x2 up-convolution halving the channels, concatenation with the skip connection,
two 3x3 convolutions. A 1x1 convolution maps to the classes.

Differences from the paper (as in most modern re-implementations): convolutions are padded ("same")
instead of "valid", so no cropping of skip connections is needed and the output has the input's size;
batch normalisation follows each convolution (``batch_norm=False`` gives the paper's plain version).
There is no pretrained encoder. Output stride is ``2 ** depth``.
"""

from __future__ import annotations

import torch
from torch import nn

from terraseg.models.base import SegmentationModel


class DoubleConv(nn.Sequential):
    """(3x3 conv -> [BN] -> ReLU) x 2."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool = True):
        layers: list[nn.Module] = []
        for c_in in (in_channels, out_channels):
            layers.append(nn.Conv2d(c_in, out_channels, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Down(nn.Sequential):
    """2x2 max pool then a double convolution."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool = True):
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels, batch_norm))


class Up(nn.Module):
    """2x2 up-convolution, concatenation with the skip connection, double convolution."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool = True):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(out_channels * 2, out_channels, batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(SegmentationModel):
    """Classic U-Net.

    Args:
        in_channels: input bands.
        num_classes: output classes (logits).
        base_channels: channels of the first level (paper: 64); level ``i`` has ``base * 2**i``.
        depth: number of 2x2 poolings (paper: 4); output stride ``2**depth``.
        batch_norm: batch normalisation after each convolution (default True).
        pad_mode: how inputs are padded to a multiple of ``2**depth`` (see ``SegmentationModel``).

    Encoder (for ``param_groups``): ``inc`` and ``downs`` (the contracting path, bottom included).
    """

    def __init__(self, in_channels: int, num_classes: int, base_channels: int = 64, depth: int = 4,
                 batch_norm: bool = True, pad_mode: str = "replicate"):
        super().__init__()
        self.output_stride = 2 ** depth
        self.pad_mode = pad_mode
        chans = [base_channels * 2 ** i for i in range(depth + 1)]
        self.inc = DoubleConv(in_channels, chans[0], batch_norm)
        self.downs = nn.ModuleList(Down(chans[i], chans[i + 1], batch_norm) for i in range(depth))
        self.ups = nn.ModuleList(Up(chans[i + 1], chans[i], batch_norm) for i in reversed(range(depth)))
        self.head = nn.Conv2d(chans[0], num_classes, kernel_size=1)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        return self.head(y)

    def encoder_modules(self) -> list[nn.Module]:
        return [self.inc, self.downs]
