"""Refuse model options whose parameters alone exceed the free RAM (``unet`` with ``depth: 30``),
sized on the ``meta`` device before anything is allocated. Called by ``terraseg.models.build``;
imports nothing from ``terraseg.models`` (the builder is passed in)."""

from __future__ import annotations

from terraseg.errors import ModelError, TerrasegError


def gib(n: int) -> str:
    return f"{n / 2 ** 30:.1f} GiB"


def free_ram() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def refuse_allocation(nbytes: int, what: str, error: type[TerrasegError] = ModelError, path=None) -> None:
    """The one allocation guard: refuse (``error`` naming ``path``) work that would need more than the
    free RAM, before it starts. ``what`` names the key or option and says what the memory is for."""
    free = free_ram()
    if nbytes > free:
        raise error(f"{what}: about {gib(nbytes)} needed, more than the {gib(free)} of free RAM", path)


def refuse_oversized(name: str, builder, in_channels: int, num_classes: int, options: dict) -> None:
    """Refuse (``ModelError``) options whose parameters alone exceed the free RAM (``unet`` with
    ``depth: 30``), sizing the model on the ``meta`` device first. Skipped when the caller is itself
    building on ``meta``."""
    import torch

    if torch.get_default_device().type == "meta":
        return
    import psutil

    try:
        with torch.device("meta"):
            model = builder(in_channels=in_channels, num_classes=num_classes, **options)
    except RuntimeError as exc:
        if "overflow" in str(exc).lower():
            raise ModelError(f"model {name} with options {options} cannot be built: it has more than 9.2e18 "
                             "parameters; reduce its options (depth, base_channels)") from None
        raise
    params = sum(p.numel() for p in model.parameters())
    free = psutil.virtual_memory().available
    if params * 4 > free:
        raise ModelError(f"model {name} with options {options} has {params:.3g} parameters ({gib(params * 4)}), "
                         f"more than the {gib(free)} of free RAM; reduce its options (depth, base_channels)")
