"""Model registry: ``build(name, in_channels, num_classes, **options)``.

Contract used by training, prediction, export and the GUI:

* ``build`` returns a ``torch.nn.Module`` whose ``forward(x)`` takes ``(N, in_channels, H, W)`` of any
  H, W (padding to the network stride happens inside) and returns logits ``(N, num_classes, H, W)``;
  the multitask ResUNet-a returns a named structure (``MultitaskOutput``) whose ``segmentation`` field
  holds class probabilities.
* ``probabilities(output)`` turns any model output into class probabilities ``(N, C, H, W)``.
* ``available()`` lists registry names; any segmentation-models-pytorch architecture is reachable as
  ``smp:<Arch>`` (e.g. ``smp:UnetPlusPlus`` with ``encoder_name=...``).
* ``param_groups(model)`` -> ``(encoder parameters, decoder + head parameters)``.
* ``terraseg.models.complexity.count_flops(model_or_name, size=512, ...)`` -> ``(params, flops)``.

Names are case-insensitive; unknown names or options raise ``terraseg.errors.ModelError`` listing what
exists. Importing this package does not import torch (builders are loaded on first use).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable

from terraseg.errors import ModelError

__all__ = [
    "build", "probabilities", "available", "param_groups", "describe", "ArchInfo",
    "MultitaskOutput", "smp_architectures",
]


@dataclass(frozen=True)
class ArchInfo:
    name: str
    target: str  # "module:callable"
    summary: str
    reference: str = ""
    encoder: str = ""  # which modules form the encoder group of param_groups
    backbone: str = ""  # default encoder / backbone network, "" for own encoders


REGISTRY: dict[str, ArchInfo] = {
    a.name: a
    for a in [
        ArchInfo("deeplabv3plus", "terraseg.models.smp_zoo:build_deeplabv3plus",
                 "DeepLabv3+ (smp), encoder resnet50 (default) or resnet101, output_stride 16 (default) or 8",
                 "Chen et al. 2018", "model.encoder (the ResNet)", "resnet50"),
        ArchInfo("unet", "terraseg.models.unet.model:UNet",
                 "classic U-Net, own code; options base_channels (64), depth (4)",
                 "Ronneberger et al. 2015", "inc + downs (contracting path incl. bottom)"),
        ArchInfo("fcn32s", "terraseg.models.fcn.model:FCN32s",
                 "FCN-32s on a VGG-16 backbone (torchvision); pretrained=True or a local file for ImageNet weights",
                 "Long et al. 2015", "features + fc6 + fc7 (the VGG-16)", "vgg16"),
        ArchInfo("fcn8s", "terraseg.models.fcn.model:FCN8s",
                 "FCN-8s on a VGG-16 backbone (torchvision), skips from pool3 and pool4",
                 "Long et al. 2015", "features + fc6 + fc7 (the VGG-16)", "vgg16"),
        ArchInfo("resunet34", "terraseg.models.smp_zoo:build_resunet34",
                 "U-Net with a ResNet-34 encoder (smp Unet), scratch or pretrained", "",
                 "model.encoder (the ResNet-34)", "resnet34"),
        ArchInfo("resuneta_d6", "terraseg.models.resuneta.model:ResUNetA_D6",
                 "ResUNet-a d6: residual blocks with parallel atrous convolutions, PSP pooling",
                 "Diakogiannis et al. 2020", "stem + encoder stages (down to the bottom ResBlock)"),
        ArchInfo("resuneta_d7", "terraseg.models.resuneta.model:ResUNetA_D7",
                 "ResUNet-a d7: one level deeper than d6 (output stride 64)",
                 "Diakogiannis et al. 2020", "stem + encoder stages (down to the bottom ResBlock)"),
        ArchInfo("resuneta_d6_multitask", "terraseg.models.resuneta.model:ResUNetA_D6_Multitask",
                 "ResUNet-a d6 conditioned multitask: distance, boundary, HSV colour, segmentation heads",
                 "Diakogiannis et al. 2020", "stem + encoder stages (down to the bottom ResBlock)"),
    ]
}

_NO_WEIGHTS_OK = {"encoder_weights": (None, False, "", "none", "None"), "pretrained": (None, False)}


def _target(info: ArchInfo) -> Callable[..., Any]:
    module, attr = info.target.split(":")
    return getattr(importlib.import_module(module), attr)


def smp_architectures() -> list[str]:
    """``smp:<Arch>`` names of the installed segmentation-models-pytorch."""
    from terraseg.models.smp_zoo import architectures

    return [f"smp:{cls.__name__}" for cls in architectures().values()]


def available() -> list[str]:
    """Registry names: terraseg's own names, then ``smp:<Arch>`` for each smp architecture."""
    return list(REGISTRY) + smp_architectures()


def _options_of(fn: Callable[..., Any]) -> dict[str, Any]:
    target = fn.__init__ if inspect.isclass(fn) else fn
    out = {}
    for name, p in inspect.signature(target).parameters.items():
        if name in ("self", "in_channels", "num_classes") or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        out[name] = None if p.default is inspect.Parameter.empty else p.default
    return out


def _accepts_var_kwargs(fn: Callable[..., Any]) -> bool:
    target = fn.__init__ if inspect.isclass(fn) else fn
    return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(target).parameters.values())


def describe(name: str) -> dict[str, Any]:
    """Name, summary, reference, encoder group and ``{option: default}`` of an architecture."""
    key = name.strip().lower()
    if key.startswith("smp:"):
        from terraseg.models.smp_zoo import arch_class, arch_options

        cls = arch_class(key[4:])
        opts = arch_options(cls)
        opts["encoder_weights"] = None
        opts["pad_mode"] = "replicate"
        from terraseg.models.smp_zoo import SUMMARIES

        return {"name": f"smp:{cls.__name__}", "summary": SUMMARIES.get(cls.__name__, cls.__name__),
                "reference": "segmentation-models-pytorch", "encoder": "model.encoder",
                "backbone": opts.get("encoder_name") or "", "options": opts}
    info = _lookup(key)
    fn = _target(info)
    return {"name": info.name, "summary": info.summary, "reference": info.reference,
            "encoder": info.encoder, "backbone": info.backbone, "options": _options_of(fn)}


def _lookup(key: str) -> ArchInfo:
    info = REGISTRY.get(key)
    if info is None:
        raise ModelError(f"unknown architecture {key!r}; available: {', '.join(REGISTRY)}, "
                         "and smp:<Arch> for " + ", ".join(n[4:] for n in smp_architectures()))
    return info


def build(name: str, in_channels: int = 3, num_classes: int = 2, **options: Any):
    """Build a randomly initialised (unless pretrained weights are asked for) segmentation model.

    ``name`` is a registry name (see ``available()``, case-insensitive) or ``smp:<Arch>``. The model
    pads inputs to its stride and crops back, so any H, W works.
    """
    if not isinstance(name, str) or not name.strip():
        raise ModelError(f"architecture name must be a non-empty string, not {name!r}")
    if int(in_channels) < 1 or int(num_classes) < 1:
        raise ModelError(f"in_channels and num_classes must be >= 1 (got {in_channels}, {num_classes})")
    in_channels, num_classes = int(in_channels), int(num_classes)
    key = name.strip().lower()
    if key.startswith("smp:"):
        from terraseg.models.smp_zoo import build_smp

        return build_smp(key[4:], in_channels, num_classes, **options)
    info = _lookup(key)
    fn = _target(info)
    allowed = _options_of(fn)
    options = dict(options)
    for opt, harmless in _NO_WEIGHTS_OK.items():
        if opt in options and opt not in allowed:
            if options[opt] in harmless:
                options.pop(opt)  # "no pretrained weights" is what this architecture does anyway
            else:
                raise ModelError(f"{info.name} has no pretrained weights (it is trained from scratch); "
                                 f"drop {opt}={options[opt]!r}")
    unknown = [k for k in options if k not in allowed]
    if unknown and not _accepts_var_kwargs(fn):
        raise ModelError(f"unknown option(s) {', '.join(unknown)} for {info.name}; options: "
                         + ", ".join(f"{k}={v!r}" for k, v in allowed.items()))
    for key, value in options.items():
        default = allowed.get(key)
        if isinstance(default, int) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "depth" else 1):
                raise ModelError(f"option {key} of {info.name} must be a positive integer, not {value!r}")
    if "pad_mode" in options:
        from terraseg.models.base import PAD_MODES

        if options["pad_mode"] not in PAD_MODES:
            raise ModelError(f"pad_mode must be one of {', '.join(PAD_MODES)}, not {options['pad_mode']!r}")
    try:
        from terraseg.models.size_guard import refuse_oversized

        refuse_oversized(info.name, fn, in_channels, num_classes, options)  # before allocating anything
        return fn(in_channels=in_channels, num_classes=num_classes, **options)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"cannot build {info.name}: {exc}") from None


def probabilities(output):
    """Class probabilities ``(N, C, H, W)``: softmax over logits, or the multitask ``segmentation``."""
    seg = getattr(output, "segmentation", None)
    if seg is not None:
        return seg
    if isinstance(output, dict) and "segmentation" in output:
        return output["segmentation"]
    return output.softmax(dim=1)


def param_groups(model) -> tuple[list, list]:
    """``(encoder parameters, decoder + head parameters)``; together they are all the parameters.

    Encoder, per architecture: smp models (``deeplabv3plus``, ``resunet34``, ``smp:*``) -> the smp
    ``model.encoder``; ``unet`` -> ``inc`` + ``downs`` (contracting path); ``fcn32s``/``fcn8s`` -> the
    VGG-16 (``features``, ``fc6``, ``fc7``); ResUNet-a -> stem + encoder stages. Everything else
    (decoders, PSP pooling, heads) is in the second group.
    """
    fn = getattr(model, "encoder_modules", None)
    if fn is None:
        raise ModelError(f"{model.__class__.__name__} is not a terraseg model (no encoder_modules())")
    enc_ids: set[int] = set()
    encoder: list = []
    for module in fn():
        for p in module.parameters():
            if id(p) not in enc_ids:
                enc_ids.add(id(p))
                encoder.append(p)
    rest = [p for p in model.parameters() if id(p) not in enc_ids]
    return encoder, rest


def __getattr__(name: str):  # lazy access to torch-dependent names
    if name == "MultitaskOutput":
        from terraseg.models.base import MultitaskOutput

        return MultitaskOutput
    raise AttributeError(f"module 'terraseg.models' has no attribute {name!r}")
