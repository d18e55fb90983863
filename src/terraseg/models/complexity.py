"""Model size on the ``meta`` device (shapes only, nothing allocated): parameter and FLOP counts
(``torch.utils.flop_counter.FlopCounterMode``) and the training memory guard that refuses a model
which cannot fit before it is built for real."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any


def count_flops(model_or_name, size=512, in_channels: int = 3, num_classes: int = 6, batch: int = 1,
                **options: Any) -> tuple[int, int]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from terraseg.models import build

    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    with torch.device("meta"):
        if isinstance(model_or_name, str):
            opts = {k: v for k, v in options.items() if k not in ("encoder_weights", "pretrained")}
            model = build(model_or_name, in_channels=in_channels, num_classes=num_classes, **opts)
        else:
            model = copy.deepcopy(model_or_name).to("meta")
            first = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
            if first is not None:
                in_channels = first.in_channels
        params = sum(p.numel() for p in model.parameters())
        model.eval()
        x = torch.empty(batch, in_channels, h, w, device="meta")
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(x)
    return int(params), int(counter.get_total_flops())


#: Bytes per parameter while training with AdamW in fp32: weight, gradient and two moments.
TRAIN_BYTES_PER_PARAM = 16


@dataclass
class Footprint:
    """Training memory estimate of a model at a crop size and batch (``None``: beyond counting)."""

    params: int | None
    activation_bytes: int | None

    @property
    def total_bytes(self) -> int | None:
        if self.params is None or self.activation_bytes is None:
            return None
        return self.params * TRAIN_BYTES_PER_PARAM + self.activation_bytes


def training_footprint(name: str, options: dict, in_channels: int, num_classes: int, crop: int,
                       batch: int) -> Footprint:
    """Parameters and activation memory of one training step, measured on the ``meta`` device
    (shapes only: nothing is allocated, so even absurd models are sized in well under a second).

    Activations are the fp32 outputs of every leaf module in a training-mode forward pass (what
    autograd keeps for the backward pass, give or take in-place ReLUs).
    """
    import torch

    from terraseg.models import build

    opts = {k: v for k, v in options.items() if k not in ("encoder_weights", "pretrained")}
    try:
        with torch.device("meta"):
            model = build(name, in_channels=in_channels, num_classes=num_classes, **opts)
    except RuntimeError as exc:  # a tensor whose size overflows int64 is beyond any machine
        if "overflow" in str(exc).lower():
            return Footprint(None, None)
        raise
    params = sum(p.numel() for p in model.parameters())
    total = [0]

    def hook(_module, _inputs, output):
        for t in output if isinstance(output, (tuple, list)) else [output]:
            if isinstance(t, torch.Tensor):
                total[0] += t.numel() * 4

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        model.train()
        model(torch.empty(batch, in_channels, crop, crop, device="meta"))
    except RuntimeError as exc:
        if "overflow" not in str(exc).lower():
            raise _cannot_run(name, options, exc) from None
        return Footprint(params, None)
    except (TypeError, ValueError, IndexError, ZeroDivisionError, AttributeError) as exc:
        # an option of the wrong type that the builder stored without using (``"4"`` for a size)
        raise _cannot_run(name, options, exc) from None
    finally:
        for h in handles:
            h.remove()
    return Footprint(int(params), int(total[0]))


def _cannot_run(name: str, options: dict, exc: BaseException):
    from terraseg.errors import ModelError, first_line

    return ModelError(f"model {name} with options {dict(options)} cannot run a forward pass "
                      f"({type(exc).__name__}: {first_line(exc, 160)}); check the types and sizes in model.options")


def device_memory(accelerator: str = "auto") -> tuple[int, str]:
    """``(bytes, description)`` of the memory training can use: the GPU's, else free RAM."""
    import torch

    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info()
        return int(free), f"free on {torch.cuda.get_device_name(0)}"
    import psutil

    return int(psutil.virtual_memory().available), "of free RAM"


def check_training_fits(name: str, options: dict, in_channels: int, num_classes: int, crop: int, batch: int,
                        accelerator: str = "auto") -> Footprint:
    """Refuse (``ModelError``) a model that cannot train here, before anything is allocated."""
    from terraseg.errors import ModelError
    from terraseg.models.size_guard import gib as _gib

    fp = training_footprint(name, options, in_channels, num_classes, crop, batch)
    budget, where = device_memory(accelerator)
    what = f"model {name} with options {dict(options)}"
    hint = "reduce model.options (depth, base_channels), data.batch_size or data.crop_size"
    if fp.params is None:
        raise ModelError(f"{what} cannot be built: it has more than 9.2e18 parameters; {hint}")
    need = fp.total_bytes
    if need is None:
        raise ModelError(f"{what} cannot fit: {fp.params:.3g} parameters ({_gib(fp.params * TRAIN_BYTES_PER_PARAM)} "
                         f"to train) and activations beyond counting at batch {batch} of {crop} px crops; {hint}")
    if need > budget:
        raise ModelError(f"{what} cannot fit: {fp.params:.3g} parameters ({_gib(fp.params * TRAIN_BYTES_PER_PARAM)} "
                         f"with gradients and AdamW state) and {_gib(fp.activation_bytes)} of activations at batch "
                         f"{batch} of {crop} px crops need about {_gib(need)}, but {_gib(budget)} {where} are "
                         f"available; {hint}")
    return fp

