"""Training configuration: YAML file + command-line overrides -> a validated nested ``dict``.

The keys, types, defaults and help texts are the pydantic models of ``terraseg.schemas.training``.
``load_config(path, overrides)`` merges the file over the defaults, applies ``key.sub=value`` (or
``--key.sub=value``) overrides whose values are YAML (so ``trainer.devices=[0,1]`` and
``model.options={depth: 3}`` work), validates everything and returns plain dicts with absolute
paths. Every mistake is one ``ConfigError`` naming the file (or the override) and the key path.

No heavy imports here: the CLI uses this module for ``--print-config``. Lightning is imported only
to check ``trainer:`` keys that terraseg does not list itself.
"""

from __future__ import annotations

import copy
import difflib
import typing
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel

from terraseg.errors import ConfigError
from terraseg.schemas._validate import model_of, read_yaml, validate
from terraseg.schemas.training import LOSS_NAMES, OPTIMIZERS, SCHEDULES, TrainConfig

_PATH_KEYS = (("data", "dataset"), ("data", "split"), ("output", "dir"))


def default_config() -> dict[str, Any]:
    """The full default config as a nested dict (a fresh copy)."""
    return TrainConfig().model_dump()


def _merge(base: dict[str, Any], update: dict[str, Any], model: type[BaseModel] | None) -> dict[str, Any]:
    """``update`` over ``base``: sections and sub-sections merge key by key, other values are replaced."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        field = model.model_fields.get(key) if model is not None else None
        sub = model_of(field.annotation) if field is not None else None
        if sub is not None and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, sub)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"trainer.max_epochs=5"`` or ``"--trainer.max_epochs=5"`` -> (["trainer", "max_epochs"], 5)."""
    from terraseg.schemas._validate import parse_yaml

    body = text.strip()
    body = body[2:] if body.startswith("--") else body
    if "=" not in body:
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    key, raw = body.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {text!r}: the key must be section.key (e.g. trainer.max_epochs=5)")
    try:
        value = parse_yaml(raw) if raw.strip() else None
    except ConfigError:
        value = raw
    return parts, value


def apply_overrides(cfg: dict[str, Any], overrides: Iterable[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Apply overrides to a (merged) config dict; returns it and ``{dotted key: override text}``.

    ``section.key.sub=value`` reaches into mappings (``loss.terms.dice=0.5``); ``null`` there removes
    the entry (``loss.terms.ce=null``). Relative paths are relative to the current directory.
    """
    out = copy.deepcopy(cfg)
    origin: dict[str, str] = {}
    for text in overrides:
        parts, value = parse_override(text)
        if tuple(parts) in _PATH_KEYS and isinstance(value, str) and value:
            value = str(Path(value).expanduser().resolve())
        node = out
        for i, p in enumerate(parts[:-1]):
            if parts[:1] == ["logger"] and isinstance(node.get(p), (str, list)):
                node[p] = {"name": node[p]} if isinstance(node[p], str) else (node[p][0] if node[p] else {})
            if node.get(p) is None:
                node[p] = {}
            nxt = node[p]
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {text!r}: {'.'.join(parts[:i + 1])} is not a mapping")
            node = nxt
        if value is None and len(parts) > 2:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
        origin[".".join(parts)] = text
    return out, origin


def _check_trainer_args(trainer: dict[str, Any], where) -> None:
    """Keys under ``trainer:`` that terraseg does not list must be ``lightning.Trainer`` arguments."""
    from terraseg.schemas.training import Trainer

    extra = [k for k in trainer if k not in Trainer.model_fields]
    if not extra:
        return
    import inspect

    from lightning.pytorch import Trainer as LightningTrainer

    allowed = [p for p in inspect.signature(LightningTrainer.__init__).parameters if p != "self"]
    for key in extra:
        if key not in allowed:
            close = difflib.get_close_matches(key, [*Trainer.model_fields, *allowed], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            label = where(f"trainer.{key}")
            raise ConfigError(f"key 'trainer.{key}': not a terraseg trainer key nor a lightning.Trainer "
                              f"argument{hint}", label)


def load_config(path: str | Path | dict | None = None, overrides: Iterable[str] = (),
                require_dataset: bool = True) -> dict[str, Any]:
    """Read a config file (or take a dict, or only defaults) + overrides; return the validated config.

    Relative paths in the file are resolved against the file's folder; relative paths given as
    overrides, and the defaults, against the current directory. The result holds absolute paths.
    """
    source: Path | None = None
    if path is None:
        user: Any = {}
    elif isinstance(path, dict):
        user = copy.deepcopy(path)
    else:
        source = Path(path)
        user = read_yaml(source, what="config file") or {}
    if not isinstance(user, dict):
        raise ConfigError("a training config must be a YAML mapping of sections (data, model, loss, ...)", source)
    base_dir = source.resolve().parent if source is not None else Path.cwd()
    for sec, key in _PATH_KEYS:  # paths in the file are relative to the file
        v = user.get(sec, {}).get(key) if isinstance(user.get(sec), dict) else None
        if isinstance(v, str) and v:
            user[sec][key] = str((base_dir / Path(v).expanduser()).resolve())
    merged, origin = apply_overrides(_merge(default_config(), user, TrainConfig), overrides)

    def where(key: str):
        for k, text in origin.items():
            if key == k or key.startswith((k + ".", k + "[")) or k.startswith(key + "."):
                return f"override {text!r}"
        return source

    if isinstance(merged.get("trainer"), dict):  # unknown keys first, as for every other section
        _check_trainer_args(merged["trainer"], where)
    cfg = validate(TrainConfig, merged, source, origin=where).model_dump()
    for sec, key in _PATH_KEYS:  # defaults are relative to the current directory
        if isinstance(cfg[sec][key], str):
            cfg[sec][key] = str(Path.cwd() / Path(cfg[sec][key]).expanduser()) \
                if not Path(cfg[sec][key]).expanduser().is_absolute() else str(Path(cfg[sec][key]).expanduser())
    _init_from_defaults(cfg, user, origin, base_dir)
    _check_sizes(cfg, where)
    if require_dataset and not cfg["data"]["dataset"]:
        raise ConfigError("key 'data.dataset': missing; give the dataset description YAML "
                          "(e.g. data.dataset=DATA.yaml)", where("data.dataset"))
    return cfg


def _check_sizes(cfg: dict[str, Any], where) -> None:
    """Sizes that would allocate beyond the machine, refused before any work with the key named: crops
    over the pixel guard (``$TERRASEG_MAX_PIXELS``), an epoch whose shuffled order alone exceeds the RAM.
    (The model's training footprint is checked once the dataset's band count is known.)"""
    from terraseg.data.source import MAX_PIXELS_ENV, max_pixels
    from terraseg.models.size_guard import refuse_allocation

    d = cfg["data"]
    limit = max_pixels()
    for key in ("crop_size", "val_crop_size"):
        size = d.get(key)
        if size is not None and size * size > limit:
            raise ConfigError(f"key 'data.{key}': {size}×{size} px crops are over the limit of {limit:,} px "
                              f"per image; raise it with {MAX_PIXELS_ENV}=<pixels> if you mean it", where(f"data.{key}"))
    n = d.get("samples_per_epoch")
    if n:  # the sampler holds a shuffled int64 index of every crop of the epoch
        refuse_allocation(8 * int(n), f"key 'data.samples_per_epoch': {int(n):,} crops per epoch (their shuffled "
                                      "order alone)", ConfigError, where("data.samples_per_epoch"))


def _init_from_defaults(cfg: dict[str, Any], user: dict, origin: dict, base_dir: Path) -> None:
    """``model.init_from``: a relative path in the file is relative to the file (a built-in name stays a
    name), and ``model.name`` / ``model.options`` that neither the file nor an override gives are the
    source model's, so ``init_from: dubai-landcover`` alone fine-tunes that architecture."""
    ref = cfg["model"].get("init_from")
    if not ref:
        return
    relative = base_dir / Path(ref).expanduser()
    if not Path(ref).expanduser().is_absolute() and relative.exists():
        cfg["model"]["init_from"] = ref = str(relative.resolve())
    from terraseg.train.init_from import source_meta

    meta, _ = source_meta(ref)
    given = user.get("model") if isinstance(user.get("model"), dict) else {}
    overridden = {k.split(".")[1] for k in origin if k.startswith("model.") and k.count(".") >= 1}
    if "name" not in given and "name" not in overridden:
        cfg["model"]["name"] = meta.architecture
        if "options" not in given and "options" not in overridden:
            cfg["model"]["options"] = dict(meta.options)


def dump_config(cfg: dict[str, Any], comments: bool = False) -> str:
    """YAML text of ``cfg``; with ``comments`` every key gets its help line (for --print-config)."""
    import yaml

    if not comments:
        return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None)
    lines = ["# terraseg training config (every key with its value; defaults unless set).",
             "# Override any key on the command line: terraseg train CONFIG section.key=value (or --section.key=value).",
             "# trainer: also takes any other lightning.Trainer argument, e.g. accumulate_grad_batches: 4.", ""]
    _dump_model(TrainConfig, cfg, lines, "")
    return "\n".join(lines)


def _leaf(key: str, value: Any, indent: str, help_text: str | None, lines: list[str]) -> None:
    import yaml

    text = yaml.safe_dump({key: value}, default_flow_style=True, sort_keys=False, width=10**6).strip()
    text = text[1:-1] if text.startswith("{") and text.endswith("}") else text
    lines.append(f"{indent}{text:<{max(44 - len(indent), 1)}} # {help_text}" if help_text else f"{indent}{text}")


def _dump_model(model: type[BaseModel], values: dict[str, Any], lines: list[str], indent: str) -> None:
    for key, field in model.model_fields.items():
        value = values.get(key, field.get_default(call_default_factory=True))
        sub = model_of(field.annotation)
        if sub is not None and isinstance(value, dict) and typing.get_origin(field.annotation) is not list:
            head = f"{indent}{key}:"
            lines.append(f"{head:<44} # {field.description}" if field.description else head)
            _dump_model(sub, value, lines, indent + "  ")
        elif sub is not None and isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{f'{indent}{key}:':<44} # {field.description}")
            for item in value:
                first = len(lines)
                _dump_model(sub, item, lines, indent + "  ")
                lines[first] = f"{indent}- " + lines[first][len(indent) + 2:]
        else:
            _leaf(key, value, indent, field.description, lines)
            if sub is not None and value == []:  # show what an entry holds
                for name, f in sub.model_fields.items():
                    lines.append(f"{f'{indent}#   {name}: ...':<44} # {f.description}")
    for key, value in values.items():  # extra trainer keys (Lightning arguments)
        if key not in model.model_fields:
            _leaf(key, value, indent, "lightning.Trainer argument", lines)
    if not indent:
        lines.append("")


def get(cfg: dict[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for p in dotted.split("."):
        if not isinstance(node, dict) or p not in node:
            return default
        node = node[p]
    return node


__all__ = ["default_config", "dump_config", "load_config", "apply_overrides", "parse_override", "get",
           "LOSS_NAMES", "OPTIMIZERS", "SCHEDULES", "TrainConfig"]
