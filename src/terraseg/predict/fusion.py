"""Folding batch normalisation into the convolution before it, for faster inference.

In eval mode a BatchNorm2d is a fixed per-channel scale and shift, so it can be folded into the
weights and bias of the convolution that feeds it (``torch.nn.utils.fusion.fuse_conv_bn_eval``):
one pass over the feature map instead of two. ``torch.fx`` fusion would find the pairs from the
graph, but many models (smp's encoders check input shapes in Python) cannot be traced, so pairs are
found as a convolution directly followed by a batch norm among a module's children, and the fused
copy is only used when its probabilities match the original on a test input.
"""

from __future__ import annotations

import copy

__all__ = ["fuse_conv_bn"]


def _pairs(model):
    import torch.nn as nn

    found = []
    for parent in model.modules():
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if (isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(bn, nn.BatchNorm2d)
                    and bn.running_mean is not None and bn.num_features == conv.out_channels):
                found.append((parent, conv_name, bn_name))
    return found


def fuse_conv_bn(model, example, atol: float = 1e-4):
    """``(model, pairs fused)``: a copy of the eval-mode ``model`` with conv + batch norm pairs folded,
    or ``model`` itself (0) when there is nothing to fold or the fused copy does not agree with it on
    ``example`` (a float tensor batch) to ``atol`` in probabilities."""
    import torch
    import torch.nn as nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    from terraseg.models import probabilities

    model = model.eval()
    if not _pairs(model):
        return model, 0
    fused = copy.deepcopy(model)
    pairs = _pairs(fused)
    for parent, conv_name, bn_name in pairs:
        conv = getattr(parent, conv_name)
        setattr(parent, conv_name, fuse_conv_bn_eval(conv, getattr(parent, bn_name),
                                                     transpose=isinstance(conv, nn.ConvTranspose2d)))
        setattr(parent, bn_name, nn.Identity())
    try:
        with torch.inference_mode():
            ref = probabilities(model(example)).float()
            out = probabilities(fused(example)).float()
    except Exception:  # a model that needs other input sizes: keep it unfused rather than fail
        return model, 0
    if out.shape != ref.shape or float((out - ref).abs().max()) > atol:
        return model, 0
    return fused, len(pairs)
