"""Parameter and FLOP counts with ``torch.utils.flop_counter.FlopCounterMode`` on the meta device."""

from __future__ import annotations

import copy
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
