"""Pretrained encoder weights: opt-in, from a download cache or from a local file.

``resolve_weights(encoder_weights, pretrained)`` normalises the user's options into ``None`` (random
initialisation), a named download (e.g. ``"imagenet"``) or a local ``Path``. ``load_local_weights``
reads a ``.safetensors`` or ``.pth``/``.pt`` file (``torch.load(weights_only=True)``; nothing is
unpickled) and copies it into a module, matching keys across the usual prefixes (``encoder.``,
``module.``, ``model.``), ignoring extra tensors (classifier heads) and adapting a first convolution
trained on 3 bands to the requested number of bands (channels repeated and rescaled, as
segmentation-models-pytorch does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from terraseg.errors import ModelError, first_line

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")

LOCAL_HINT = ("download them on a machine with internet access and pass the local file with "
              "encoder_weights=/path/to/file.safetensors (or .pth)")


def resolve_weights(encoder_weights: Any = None, pretrained: Any = None):
    """Return ``None``, a weights name (str) or a local file ``Path``."""
    value = encoder_weights
    if value in (None, False, "", "none", "None"):
        value = None
    if pretrained not in (None, False):
        if value is not None and pretrained is not True and str(pretrained) != str(value):
            raise ModelError(f"both encoder_weights={encoder_weights!r} and pretrained={pretrained!r} given; use one")
        if value is None:
            value = "imagenet" if pretrained is True else pretrained
    if value is None:
        return None
    if value is True:
        return "imagenet"
    text = str(value)
    looks_like_path = (isinstance(value, Path) or "/" in text or "\\" in text
                       or text.lower().endswith(WEIGHT_SUFFIXES) or Path(text).exists())
    if looks_like_path:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ModelError("pretrained weights file not found", path)
        return path
    return text


def read_state_dict(path: Path) -> dict:
    """Read tensors from a .safetensors or a .pth/.pt file without running any pickled code."""
    import torch

    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable / not a weights file: a user mistake
        raise ModelError(f"cannot read weights ({exc.__class__.__name__}: {first_line(exc)})",
                         path) from None
    # common wrappers: {"state_dict": ...}, {"model": ...}
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError("weights file does not hold a dictionary of tensors", path)
    return dict(state)


_PREFIXES = ("", "encoder.", "module.", "model.", "backbone.", "module.encoder.", "encoder.model.", "model.encoder.")


def _candidate_maps(keys) -> list[Callable[[str], str]]:
    maps: list[Callable[[str], str]] = []
    for strip in _PREFIXES:
        for add in ("", "model."):
            def f(k: str, strip=strip, add=add) -> str:
                return add + (k[len(strip):] if strip and k.startswith(strip) else k)
            maps.append(f)
    return maps


def adapt_first_conv(weight, in_channels: int):
    """Adapt a conv weight (O, I, kh, kw) trained on I bands to ``in_channels`` bands (smp's rule)."""
    import torch

    old = weight.shape[1]
    if in_channels == old:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    idx = torch.arange(in_channels) % old
    return weight[:, idx] * (old / in_channels)


def load_local_weights(module, path: Path, convert: Callable[[dict], dict] | None = None) -> None:
    """Load encoder weights from ``path`` into ``module`` (keys matched across common prefixes)."""
    state = read_state_dict(path)
    if convert is not None:
        state = convert(state)
    load_encoder_state(module, state, path)


def load_encoder_state(module, state: dict, path: Any = None) -> None:
    """Copy ``state`` into ``module``: keys matched across prefixes, extra tensors ignored, first
    convolution adapted to the module's band count. Raises ``ModelError`` naming ``path``."""
    target = module.state_dict()
    best: dict = {}
    for f in _candidate_maps(state):
        mapped = {f(k): v for k, v in state.items()}
        hits = {k: v for k, v in mapped.items() if k in target}
        if len(hits) > len(best):
            best = hits
    needed = [k for k in target if not k.endswith("num_batches_tracked")]
    missing = [k for k in needed if k not in best]
    if not best or missing:
        example = ", ".join(missing[:3])
        raise ModelError(
            f"weights file does not match the encoder: {len(missing)} of {len(needed)} tensors missing "
            f"(e.g. {example})", path)
    for k, v in list(best.items()):
        want = target[k].shape
        if v.shape == want:
            continue
        if v.ndim == 4 and len(want) == 4 and v.shape[0] == want[0] and v.shape[2:] == want[2:]:
            best[k] = adapt_first_conv(v, want[1])
        else:
            raise ModelError(f"weights file tensor {k} has shape {tuple(v.shape)}, the encoder needs {tuple(want)}",
                             path)
    module.load_state_dict({**target, **best}, strict=True)


def download_error(what: str, exc: BaseException) -> ModelError:
    return ModelError(f"could not download pretrained weights for {what} ({first_line(exc)}); {LOCAL_HINT}")
