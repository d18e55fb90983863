"""``model.init_from``: start training from the weights of a bundle or a built-in model.

Every tensor of the source whose name and shape match the new model is copied; the others (a head
for another number of classes, a first convolution for another number of bands) keep their fresh
initialisation. What was loaded is reported in one line, so a fine-tuning run that silently started
from scratch (another architecture, other options) cannot pass unnoticed: nothing matching is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from terraseg.errors import ConfigError


@dataclass
class InitReport:
    source: str
    loaded: int
    total: int
    reinitialised: list[str] = field(default_factory=list)  # same name, other shape
    missing: list[str] = field(default_factory=list)  # in the model, not in the source

    def line(self) -> str:
        text = f"init_from {self.source}: loaded {self.loaded} of {self.total} weight tensors"
        if self.reinitialised:
            text += (f"; re-initialised {len(self.reinitialised)} whose shape differs "
                     f"({', '.join(self.reinitialised[:3])}{', ...' if len(self.reinitialised) > 3 else ''})")
        if self.missing:
            text += f"; {len(self.missing)} not in the source"
        return text


def source_meta(ref):
    """The bundle metadata of ``ref`` (a bundle folder or a built-in name), or one ConfigError."""
    from terraseg.bundle import is_onnx_model, read_meta
    from terraseg.errors import TerrasegError
    from terraseg.pretrained import resolve_model

    try:
        path = resolve_model(ref)
        if is_onnx_model(path):
            raise ConfigError("an ONNX file holds no trainable weights; give a bundle folder or a built-in name", path)
        return read_meta(path), path
    except ConfigError:
        raise
    except TerrasegError as exc:
        raise ConfigError(f"key 'model.init_from': {exc}") from None


def load_matching(model, ref) -> InitReport:
    """Copy into ``model`` every weight of the bundle ``ref`` whose name and shape match."""
    import torch
    from safetensors.torch import load_file

    from terraseg.bundle import WEIGHTS_NAME
    from terraseg.models.finite import check_finite

    _, folder = source_meta(ref)
    weights = load_file(str(folder / WEIGHTS_NAME))
    check_finite(weights, folder / WEIGHTS_NAME)
    own = model.state_dict()
    chosen, other_shape = {}, []
    for name, tensor in own.items():
        if name not in weights:
            continue
        if tuple(weights[name].shape) == tuple(tensor.shape):
            chosen[name] = weights[name].to(dtype=tensor.dtype) if tensor.is_floating_point() else weights[name]
        else:
            other_shape.append(name)
    report = InitReport(str(ref), len(chosen), len(own), other_shape,
                        [n for n in own if n not in weights])
    if not chosen:
        raise ConfigError(f"key 'model.init_from': no weight of {ref} matches this model (another architecture "
                          "or other model.options?); leave model.name and model.options unset to take the source's")
    with torch.no_grad():
        model.load_state_dict(chosen, strict=False)
    return report
