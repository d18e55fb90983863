"""Fully convolutional networks FCN-32s and FCN-8s (Long, Shelhamer & Darrell, 2015) on VGG-16.

The backbone is torchvision's VGG-16 (``features``: 13 convolutions, 5 max pools, stride 32) with the
classifier "convolutionalised": ``fc6`` is a 7x7 convolution (512 -> 4096, padded so the map keeps its
size) and ``fc7`` a 1x1 convolution (4096 -> 4096), each followed by ReLU and dropout 0.5.
``score_fr`` (1x1) gives class scores at stride 32.

* FCN-32s: one learnable 64x64 transposed convolution, stride 32, initialised to bilinear upsampling.
* FCN-8s: scores at stride 32 are upsampled x2 (bilinear-initialised transposed convolution) and added
  to 1x1 scores from ``pool4``, upsampled x2 again and added to scores from ``pool3``, then upsampled
  x8. Skip score layers start at zero, as in the paper's reference code.

Differences from the paper: no 100 px input padding / "crop" layers (terraseg pads the input to a
multiple of 32 and crops the output instead, so sizes line up exactly).

Weights are random unless asked for: ``pretrained=True`` / ``encoder_weights="imagenet"`` loads
torchvision's ImageNet VGG-16 (download), ``encoder_weights=/path/vgg16.pth`` (or ``.safetensors``)
loads a local torchvision or timm VGG-16 checkpoint (classifier ``fc6``/``fc7`` weights are reshaped
into the convolutions). With more or fewer than 3 bands the first convolution is adapted.
Encoder (``param_groups``): ``features``, ``fc6``, ``fc7``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from terraseg.errors import ModelError
from terraseg.models.base import SegmentationModel
from terraseg.models.weights import download_error, load_encoder_state, read_state_dict, resolve_weights

POOL3, POOL4 = 17, 24  # torchvision vgg16.features indices right after pool3 / pool4


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """Weight (C, C, k, k) that makes a transposed convolution perform bilinear upsampling."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float32)
    filt1d = 1 - (og - center).abs() / factor
    filt = filt1d[:, None] * filt1d[None, :]
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    weight[range(channels), range(channels)] = filt
    return weight


def _upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    up = nn.ConvTranspose2d(channels, channels, kernel_size=2 * factor, stride=factor, padding=factor // 2,
                            bias=False)
    if up.weight.device.type != "meta":
        with torch.no_grad():
            up.weight.copy_(bilinear_kernel(channels, 2 * factor))
    return up


def _convert_vgg_state(state: dict) -> dict:
    """torchvision (classifier.0/.3, Linear) or timm (pre_logits.fc1/.fc2, conv) -> fc6/fc7 convs."""
    out = {}
    for k, v in state.items():
        for prefix in ("module.", "model.", "encoder.", "backbone."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        if k.startswith("features."):
            out[k] = v
        elif k in ("classifier.0.weight", "pre_logits.fc1.weight"):
            out["fc6.weight"] = v.reshape(v.shape[0], 512, 7, 7)
        elif k in ("classifier.0.bias", "pre_logits.fc1.bias"):
            out["fc6.bias"] = v
        elif k in ("classifier.3.weight", "pre_logits.fc2.weight"):
            out["fc7.weight"] = v.reshape(v.shape[0], -1, 1, 1)
        elif k in ("classifier.3.bias", "pre_logits.fc2.bias"):
            out["fc7.bias"] = v
    return out


class _VGGView(nn.Module):
    """The encoder modules of an FCN under VGG-like names (shares them; used to load weights)."""

    def __init__(self, features: nn.Module, fc6: nn.Module, fc7: nn.Module):
        super().__init__()
        self.features, self.fc6, self.fc7 = features, fc6, fc7


class _FCNBase(SegmentationModel):
    def __init__(self, in_channels: int, num_classes: int, pretrained: Any = None, encoder_weights: Any = None,
                 dropout: float = 0.5, fc_channels: int = 4096, pad_mode: str = "replicate"):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        self.output_stride = 32
        self.pad_mode = pad_mode
        # torchvision's VGG-16 feature extractor (configuration "D"), without building the classifier
        features = make_layers(cfgs["D"], batch_norm=False)
        features[0] = nn.Conv2d(in_channels, 64, 3, padding=1)
        for m in features.modules():  # torchvision's VGG initialisation
            if isinstance(m, nn.Conv2d) and m.weight.device.type != "meta":
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        self.features = features
        self.fc6 = nn.Conv2d(512, fc_channels, kernel_size=7, padding=3)
        self.fc7 = nn.Conv2d(fc_channels, fc_channels, kernel_size=1)
        self.drop = nn.Dropout(dropout)
        self.score_fr = nn.Conv2d(fc_channels, num_classes, kernel_size=1)
        weights = resolve_weights(encoder_weights, pretrained)
        if weights is not None:
            self._load_pretrained(weights)

    def _load_pretrained(self, weights) -> None:
        view = _VGGView(self.features, self.fc6, self.fc7)
        if isinstance(weights, Path):
            load_encoder_state(view, _convert_vgg_state(read_state_dict(weights)), weights)
            return
        if str(weights).lower() not in ("imagenet", "imagenet1k_v1", "default"):
            raise ModelError(f"unknown VGG-16 weights {weights!r}; use 'imagenet' or a local file path")
        from torchvision.models import VGG16_Weights, vgg16

        try:
            state = vgg16(weights=VGG16_Weights.IMAGENET1K_V1).state_dict()
        except Exception as exc:  # no network, no cache
            raise download_error("VGG-16 (torchvision IMAGENET1K_V1)", exc) from None
        load_encoder_state(view, _convert_vgg_state(state), "torchvision VGG16_Weights.IMAGENET1K_V1")

    def _trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pool3 = self.features[:POOL3](x)
        pool4 = self.features[POOL3:POOL4](pool3)
        pool5 = self.features[POOL4:](pool4)
        h = self.drop(F.relu(self.fc6(pool5), inplace=True))
        h = self.drop(F.relu(self.fc7(h), inplace=True))
        return pool3, pool4, self.score_fr(h)

    def encoder_modules(self) -> list[nn.Module]:
        return [self.features, self.fc6, self.fc7]


class FCN32s(_FCNBase):
    """FCN-32s: VGG-16 -> 1x1 class scores at stride 32 -> learnable x32 bilinear upsampling.

    Args: ``in_channels``, ``num_classes``, ``pretrained`` / ``encoder_weights`` (None: random init;
    True/"imagenet": torchvision download; a path: local VGG-16 file), ``dropout`` (0.5),
    ``fc_channels`` (4096 as in VGG-16/the paper; smaller values such as 1024 cut the 120 M parameters
    of fc6/fc7, but then ImageNet weights only fit a checkpoint with the same width), ``pad_mode``.
    Returns logits.
    """

    def __init__(self, in_channels: int, num_classes: int, pretrained: Any = None, encoder_weights: Any = None,
                 dropout: float = 0.5, fc_channels: int = 4096, pad_mode: str = "replicate"):
        super().__init__(in_channels, num_classes, pretrained, encoder_weights, dropout, fc_channels, pad_mode)
        self.upscore = _upsampler(num_classes, 32)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        return self.upscore(self._trunk(x)[2])


class FCN8s(_FCNBase):
    """FCN-8s: FCN-32s scores fused with pool4 (stride 16) and pool3 (stride 8) scores.

    Same arguments as ``FCN32s``. Returns logits.
    """

    def __init__(self, in_channels: int, num_classes: int, pretrained: Any = None, encoder_weights: Any = None,
                 dropout: float = 0.5, fc_channels: int = 4096, pad_mode: str = "replicate"):
        super().__init__(in_channels, num_classes, pretrained, encoder_weights, dropout, fc_channels, pad_mode)
        self.score_pool4 = nn.Conv2d(512, num_classes, kernel_size=1)
        self.score_pool3 = nn.Conv2d(256, num_classes, kernel_size=1)
        for layer in (self.score_pool4, self.score_pool3):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.upscore2 = _upsampler(num_classes, 2)
        self.upscore_pool4 = _upsampler(num_classes, 2)
        self.upscore8 = _upsampler(num_classes, 8)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        pool3, pool4, score = self._trunk(x)
        y = self.upscore2(score) + self.score_pool4(pool4)
        y = self.upscore_pool4(y) + self.score_pool3(pool3)
        return self.upscore8(y)
