"""segmentation-models-pytorch architectures behind terraseg's wrapper.

``smp:<Arch>`` builds any smp architecture (``Unet``, ``UnetPlusPlus``, ``FPN``, ``PSPNet``,
``DeepLabV3``, ``DeepLabV3Plus``, ``Linknet``, ``MAnet``, ``PAN``, ``UPerNet``, ``Segformer``, ``DPT``)
with any smp encoder or any timm model as ``tu-<timm name>`` (``encoder_name=...``). The named
shortcuts ``deeplabv3plus`` and ``resunet34`` are smp models with the reference configurations.

The smp model sits in ``self.model`` of an ``SmpModel`` (so state_dict keys start with ``model.``);
the encoder group of ``param_groups`` is ``model.encoder``, everything else (decoder, segmentation
head) is the head group.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Any

from torch import nn

from terraseg.errors import ModelError, first_line
from terraseg.models.base import PAD_MODES, SegmentationModel, replace_adaptive_pooling
from terraseg.models.weights import download_error, load_local_weights, resolve_weights

# options terraseg controls itself (forbidden as smp options)
_RESERVED = {"in_channels", "classes", "activation", "aux_params", "encoder_weights", "self", "kwargs"}


def architectures() -> dict[str, type]:
    """{lower-case name: smp class} for every architecture of the installed smp."""
    import segmentation_models_pytorch as smp

    return dict(smp.MODEL_ARCHITECTURES_MAPPING)


def arch_class(arch: str) -> type:
    archs = architectures()
    cls = archs.get(arch.lower())
    if cls is None:
        names = ", ".join(f"smp:{c.__name__}" for c in archs.values())
        raise ModelError(f"unknown smp architecture {arch!r}; available: {names}")
    return cls


def arch_options(cls: type) -> dict[str, Any]:
    """{option: default} accepted by an smp architecture (without terraseg-controlled ones)."""
    out = {}
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name in _RESERVED or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        out[name] = None if p.default is inspect.Parameter.empty else p.default
    return out


def encoder_names() -> list[str]:
    """smp's own encoders; any timm model also works as ``tu-<name>``."""
    import segmentation_models_pytorch as smp

    return sorted(smp.encoders.get_encoder_names())


def _check_encoder(name: str) -> None:
    if name.startswith("tu-"):
        import timm

        if not timm.is_model(name[3:]):
            raise ModelError(f"unknown timm encoder {name!r} (timm has no model {name[3:]!r}); "
                             "see `timm.list_models()` for names")
        return
    known = encoder_names()
    if name not in known:
        import difflib

        close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ModelError(f"unknown encoder {name!r}; {hint}run `terraseg models encoders` for the "
                         f"{len(known)} smp encoders, or use any timm model as 'tu-<name>'")


@functools.lru_cache(maxsize=None)
def _grid_psp_block_class() -> type:
    from segmentation_models_pytorch.decoders.pspnet.decoder import PSPBlock

    class GridPSPBlock(PSPBlock):
        """smp PSPBlock whose forward always runs its ``pool`` layers (no ONNX-only branch)."""

        def forward(self, x):
            import torch.nn.functional as F

            height, width = x.shape[2:]
            return F.interpolate(self.pool(x), size=(height, width), mode="bilinear", align_corners=True)

    return GridPSPBlock


def _patch_psp_blocks(model: nn.Module) -> None:
    """smp's PSPBlock takes a different path while exporting to ONNX (``F.interpolate(mode="area")``,
    i.e. adaptive pooling again, which fails with dynamic sizes). Give those blocks a forward that
    always runs their (grid-pooling) ``pool`` layers, so training, inference and ONNX agree."""
    cls = _grid_psp_block_class()
    for module in model.modules():
        if type(module) is cls.__bases__[0]:
            module.__class__ = cls


class SmpModel(SegmentationModel):
    """An smp model with terraseg's pad-to-stride/crop wrapper. Encoder: ``model.encoder``.

    Adaptive average pooling to grids larger than 1x1 (PSPNet's and UPerNet's pyramid pooling) is
    replaced by ``GridAvgPool2d``: identical when the feature map divides evenly, and exportable to
    ONNX with dynamic height and width (``nn.AdaptiveAvgPool2d`` is not).
    """

    def __init__(self, model: nn.Module, pad_mode: str = "replicate", min_stride: int = 1):
        super().__init__()
        replace_adaptive_pooling(model)
        _patch_psp_blocks(model)
        self.model = model
        stride = int(getattr(model.encoder, "output_stride", 32) or 32)
        self.output_stride = max(stride, min_stride)
        self.pad_mode = pad_mode

    def forward_padded(self, x):
        return self.model(x)

    def encoder_modules(self) -> list[nn.Module]:
        return [self.model.encoder]


def _is_download_failure(exc: BaseException) -> bool:
    """Network, cache or hub errors (as opposed to a bad configuration)."""
    if isinstance(exc, (OSError, ConnectionError, TimeoutError)):
        return True
    mods = {type(e).__module__.split(".")[0] for e in (exc, exc.__cause__, exc.__context__) if e is not None}
    return bool(mods & {"huggingface_hub", "requests", "urllib3", "urllib", "http", "socket", "ssl"})


def build_smp(arch: str, in_channels: int, num_classes: int, encoder_name: str | None = None,
              encoder_weights: Any = None, pretrained: Any = None, pad_mode: str = "replicate",
              **options: Any) -> SmpModel:
    """Build ``smp.<arch>`` wrapped in ``SmpModel``; weights are random unless asked for."""
    cls = arch_class(arch)
    allowed = arch_options(cls)
    if encoder_name is None:
        encoder_name = allowed.get("encoder_name") or "resnet34"
    _check_encoder(encoder_name)
    if pad_mode not in PAD_MODES:
        raise ModelError(f"pad_mode must be one of {', '.join(PAD_MODES)}, not {pad_mode!r}")
    unknown = [k for k in options if k not in allowed]
    if unknown and not encoder_name.startswith("tu-"):
        raise ModelError(f"unknown option(s) {', '.join(unknown)} for smp:{cls.__name__}; options: "
                         f"{', '.join(sorted(set(allowed) | {'encoder_weights', 'pretrained', 'pad_mode'}))}")
    weights = resolve_weights(encoder_weights, pretrained)
    if weights is not None and encoder_name.startswith("tu-") and not isinstance(weights, Path):
        weights = True  # timm universal encoders: the pretrained tag is part of the encoder name
    min_stride = 1
    if cls.__name__ == "DPT":
        # ViT encoders: accept any (padded) input size; the DPT decoder also resamples the patch grid
        # by 1/2, so the input must be a multiple of 2 x patch size (32 for patch 16)
        options.setdefault("dynamic_img_size", True)
        min_stride = 32
    elif cls.__name__ == "PAN":
        # the feature pyramid attention block max-pools the deepest map three times by 2 and
        # upsamples back: that map must be a multiple of 8 (input: 8 x encoder output stride)
        min_stride = 8 * int(options.get("encoder_output_stride", allowed.get("encoder_output_stride") or 16))
    kwargs = dict(encoder_name=encoder_name, in_channels=in_channels, classes=num_classes, **options)
    what = f"smp:{cls.__name__} encoder {encoder_name!r}"
    try:
        if weights is None or isinstance(weights, Path):
            model = cls(encoder_weights=None, **kwargs)
        else:
            try:
                model = cls(encoder_weights=weights, **kwargs)
            except KeyError as exc:  # unknown weights name for this encoder
                raise ModelError(f"{what}: {exc.args[0] if exc.args else exc}") from None
            except (ModelError, TypeError):
                raise
            except Exception as exc:  # network / cache failures (OSError, HTTP, offline mode, ...)
                if _is_download_failure(exc):
                    raise download_error(what, exc) from None
                raise
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise ModelError(f"cannot build smp:{cls.__name__} with {encoder_name!r}: {first_line(exc)}") from None
    if isinstance(weights, Path):
        load_local_weights(model.encoder, weights)
    return SmpModel(model, pad_mode=pad_mode, min_stride=min_stride)


SUMMARIES = {
    "Unet": "U-Net decoder on any encoder (Ronneberger et al. 2015)",
    "UnetPlusPlus": "U-Net++ nested dense skip pathways (Zhou et al. 2018)",
    "MAnet": "multi-scale attention net (Fan et al. 2020)",
    "Linknet": "LinkNet, additive skips, light decoder (Chaurasia & Culurciello 2017)",
    "FPN": "feature pyramid network decoder (Kirillov et al. 2019)",
    "PSPNet": "pyramid scene parsing network (Zhao et al. 2017), encoder_depth 3",
    "DeepLabV3": "DeepLabV3, ASPP, output stride 8 (Chen et al. 2017)",
    "DeepLabV3Plus": "DeepLabV3+ with low-level decoder (Chen et al. 2018)",
    "PAN": "pyramid attention network (Li et al. 2018)",
    "UPerNet": "unified perceptual parsing (Xiao et al. 2018)",
    "Segformer": "SegFormer all-MLP decoder (Xie et al. 2021); use encoder_name=mit_b0..mit_b5",
    "DPT": "dense prediction transformer on a timm ViT (Ranftl et al. 2021)",
}


def build_deeplabv3plus(in_channels: int, num_classes: int, encoder_name: str = "resnet50",
                        output_stride: int = 16, encoder_weights: Any = None, pretrained: Any = None,
                        pad_mode: str = "replicate", **options: Any) -> SmpModel:
    """DeepLabv3+ (Chen et al. 2018) from smp: ResNet-50 (default) or ResNet-101 encoder, output
    stride 16 (default) or 8. Further smp DeepLabV3Plus options pass through."""
    if int(output_stride) not in (8, 16):
        raise ModelError(f"output_stride must be 8 or 16 for deeplabv3plus, not {output_stride!r}")
    return build_smp("deeplabv3plus", in_channels, num_classes, encoder_name=encoder_name,
                     encoder_weights=encoder_weights, pretrained=pretrained, pad_mode=pad_mode,
                     encoder_output_stride=int(output_stride), **options)


def build_resunet34(in_channels: int, num_classes: int, encoder_weights: Any = None, pretrained: Any = None,
                    pad_mode: str = "replicate", **options: Any) -> SmpModel:
    """ResUNet-34: smp U-Net with a ResNet-34 encoder (random init, or ImageNet with
    ``encoder_weights="imagenet"`` / a local file). Further smp Unet options pass through."""
    if "encoder_name" in options:
        raise ModelError("resunet34 always uses the resnet34 encoder; use smp:Unet with encoder_name=... instead")
    return build_smp("unet", in_channels, num_classes, encoder_name="resnet34",
                     encoder_weights=encoder_weights, pretrained=pretrained, pad_mode=pad_mode, **options)
