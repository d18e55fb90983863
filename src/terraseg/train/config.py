"""Training configuration: defaults, YAML loading, dotted command-line overrides and validation.

A config is a plain nested ``dict`` (what ``yaml.safe_load`` gives). Every leaf has a default in
``SCHEMA``; a user file only lists what it changes. ``load_config(path, overrides)`` merges the file
over the defaults, applies ``key.sub=value`` overrides (values parsed as YAML), validates every key
and returns the resolved config. Every mistake raises ``ConfigError`` naming the file and key.

No heavy imports here: the CLI uses this module for ``--print-config``.
"""

from __future__ import annotations

import copy
import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from terraseg.errors import ConfigError

LOSS_NAMES = ("ce", "focal", "dice", "lovasz", "tanimoto")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("poly", "cosine", "step", "constant")
PRECISIONS = ("auto", "32", "32-true", "16-mixed", "bf16-mixed", "bf16-true", "16-true", "64-true")


@dataclass(frozen=True)
class Opt:
    """One config leaf: default value, kind (for validation) and a help line."""

    default: Any
    kind: str
    help: str
    choices: tuple | None = None


# kinds: int, int+ (>0), int0 (>=0), float, float+ (>0), float0 (>=0), prob ([0,1)), bool, str,
# path, path? (path or null), choice, strlist, dict, any; a trailing "?" allows null.
SCHEMA: dict[str, dict[str, Opt]] = {
    "data": {
        "dataset": Opt(None, "path?", "dataset description YAML (see `terraseg data`); required"),
        "split": Opt(None, "path?", "split JSON from `terraseg data split`; null = the dataset's own split "
                                    "file, else hold out val_fraction of the images (whole groups)"),
        "train_splits": Opt(["train"], "strlist", "split names used for training"),
        "val_splits": Opt(["val"], "strlist", "split names used for validation"),
        "val_fraction": Opt(0.2, "prob", "share of images held out for validation when split is null"),
        "crop_size": Opt(256, "int+", "training crop size in pixels (also the bundle's tile_size)"),
        "val_crop_size": Opt(None, "int+?", "validation crop size; null = whole images"),
        "batch_size": Opt(8, "int+", "training batch size"),
        "samples_per_epoch": Opt(None, "int+?", "random crops per training epoch; null = one per image"),
        "augment": Opt("default", "any", "albumentations pipeline (list of {name: ..., p: ...}), null, or "
                                         "'default' (the dataset's augment list, else flips + 90° rotations)"),
        "num_workers": Opt(0, "int0", "DataLoader worker processes (0 = load in the main process)"),
        "sampling": Opt({"mode": "area", "class_balance": 0.5}, "dict",
                        "training crops: mode uniform (each image equally often) or area (images by pixel "
                        "count); class_balance: share of crops centred on a pixel of a randomly chosen class"),
    },
    "model": {
        "name": Opt("unet", "str", "model registry name (`terraseg models list`)"),
        "options": Opt({}, "dict", "keyword options for the model builder"),
    },
    "loss": {
        "terms": Opt({"ce": 1.0, "dice": 0.5}, "dict",
                     "weighted sum of losses: {ce, focal, dice, lovasz, tanimoto: weight}"),
        "class_weights": Opt(None, "any", "null, 'auto' (median-frequency) or one weight per class (ce, focal, dice)"),
        "label_smoothing": Opt(0.0, "prob", "cross-entropy label smoothing"),
        "focal_gamma": Opt(2.0, "float0", "focal loss gamma"),
        "tanimoto_class_weights": Opt(True, "bool", "Tanimoto: weight classes by 1/volume² (ResUNet-a paper)"),
    },
    "optimizer": {
        "name": Opt("adamw", "choice", "sgd, adam or adamw", OPTIMIZERS),
        "lr": Opt(1e-3, "float+", "base learning rate (encoder)"),
        "weight_decay": Opt(1e-4, "float0", "weight decay"),
        "momentum": Opt(0.9, "prob", "SGD momentum"),
        "nesterov": Opt(False, "bool", "SGD Nesterov momentum"),
        "betas": Opt([0.9, 0.999], "any", "Adam/AdamW betas"),
        "head_lr_multiplier": Opt(1.0, "float+", "learning-rate factor for decoder/head parameters (e.g. 10)"),
    },
    "schedule": {
        "name": Opt("poly", "choice", "poly, cosine, step or constant", SCHEDULES),
        "warmup_steps": Opt(20, "int0", "linear warmup length in optimizer steps"),
        "warmup_start_factor": Opt(0.01, "prob", "learning-rate factor at the first warmup step"),
        "power": Opt(0.9, "float+", "poly: lr * (1 - progress) ** power"),
        "min_lr_factor": Opt(0.0, "prob", "poly/cosine: final learning rate as a factor of lr"),
        "milestones": Opt([0.6, 0.85], "any", "step: decay points as fractions of training (0..1)"),
        "gamma": Opt(0.1, "float+", "step: factor applied at each milestone"),
    },
    "trainer": {
        "max_epochs": Opt(50, "int+?", "number of epochs (null = until max_time)"),
        "max_time": Opt(None, "float+?", "wall-clock budget in minutes (null = no limit)"),
        "max_steps": Opt(None, "int+?", "optimizer steps (null = no limit); fixed compute, whatever the machine load"),
        "val_every": Opt(1, "int+", "validate every N epochs"),
        "seed": Opt(0, "int0", "random seed (weights, crops, augmentation)"),
        "precision": Opt("auto", "choice", "auto (bf16-mixed on a bf16 GPU or an AVX512-BF16/AMX CPU, else 32 or 16-mixed), ...",
                         PRECISIONS),
        "accelerator": Opt("auto", "str", "auto, cpu, gpu, ..."),
        "devices": Opt("auto", "any", "number of devices, a list of ids, or auto"),
        "strategy": Opt("auto", "str", "auto, ddp, ..."),
        "num_nodes": Opt(1, "int+", "number of nodes for multi-node DDP"),
        "early_stopping_patience": Opt(None, "int+?", "stop after N validations without mIoU gain (null = off)"),
        "log_every_n_steps": Opt(10, "int+", "logging interval in steps"),
        "deterministic": Opt(False, "bool", "ask torch for deterministic algorithms"),
        "channels_last": Opt(True, "bool", "channels-last (NHWC) memory layout: faster convolutions on CPU and GPU"),
        "gradient_clip_val": Opt(None, "float+?", "clip gradient norm (null = off)"),
        "limit_train_batches": Opt(None, "float+?", "Lightning limit_train_batches (debugging)"),
        "limit_val_batches": Opt(None, "float+?", "Lightning limit_val_batches (debugging)"),
        "progress_bar": Opt(True, "bool", "show the progress bar (loss and ETA)"),
    },
    "output": {
        "dir": Opt("runs", "path", "folder that holds run directories"),
        "name": Opt(None, "str?", "run directory name (null = <model>-<UTC timestamp>)"),
        "plots": Opt(True, "bool", "update curves and confusion-matrix plots after each validation"),
    },
}

_PATH_KEYS = {("data", "dataset"), ("data", "split"), ("output", "dir")}


def default_config() -> dict[str, Any]:
    """The full default config as a nested dict (a fresh copy)."""
    return {sec: {k: copy.deepcopy(o.default) for k, o in opts.items()} for sec, opts in SCHEMA.items()}


def dump_config(cfg: dict[str, Any], comments: bool = False) -> str:
    """YAML text of ``cfg``; with ``comments`` every key gets its help line (for --print-config)."""
    import yaml

    if not comments:
        return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None)
    lines = ["# terraseg training config (all keys with their defaults).",
             "# Override any key on the command line: terraseg train CONFIG section.key=value", ""]
    for sec, opts in SCHEMA.items():
        lines.append(f"{sec}:")
        for key, opt in opts.items():
            value = cfg.get(sec, {}).get(key, opt.default)
            text = yaml.safe_dump({key: value}, default_flow_style=True, sort_keys=False).strip()
            text = text[1:-1] if text.startswith("{") and text.endswith("}") else text
            lines.append(f"  {text:<44} # {opt.help}")
        lines.append("")
    return "\n".join(lines)


def _suggest(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def merge(base: dict[str, Any], update: dict[str, Any], source: str | Path | None = None) -> dict[str, Any]:
    """Merge a (partial) user config into ``base``; unknown sections/keys raise ``ConfigError``."""
    if update is None:
        return base
    if not isinstance(update, dict):
        raise ConfigError("a training config must be a YAML mapping of sections (data, model, loss, ...)", source)
    out = copy.deepcopy(base)
    for sec, values in update.items():
        if sec not in SCHEMA:
            raise ConfigError(f"unknown section {sec!r}{_suggest(str(sec), SCHEMA)}; sections are "
                              f"{', '.join(SCHEMA)}", source)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"section {sec!r} must be a mapping of keys", source)
        for key, value in values.items():
            if key not in SCHEMA[sec]:
                raise ConfigError(f"unknown key {sec}.{key}{_suggest(str(key), SCHEMA[sec])}", source)
            out[sec][key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"trainer.max_epochs=5"`` -> (["trainer", "max_epochs"], 5); the value is parsed as YAML."""
    import yaml

    text = text.strip()
    if text.startswith("--"):
        text = text[2:]
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".")]
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"override {text!r}: the key must be section.key (e.g. trainer.max_epochs=5)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(cfg: dict[str, Any], overrides: Iterable[str], base_dir: Path | None = None) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (``section.key.sub=value`` reaches into mappings such as
    ``loss.terms.dice=0.5`` or ``model.options.base_channels=16``). Paths are relative to the CWD."""
    out = copy.deepcopy(cfg)
    for text in overrides:
        parts, value = parse_override(text)
        sec, key = parts[0], parts[1]
        if sec not in SCHEMA:
            raise ConfigError(f"override {text!r}: unknown section {sec!r}{_suggest(sec, SCHEMA)}")
        if key not in SCHEMA[sec]:
            raise ConfigError(f"override {text!r}: unknown key {sec}.{key}{_suggest(key, SCHEMA[sec])}")
        if (sec, key) in _PATH_KEYS and isinstance(value, str) and base_dir is not None:
            value = str((base_dir / value).resolve()) if not Path(value).is_absolute() else value
        if len(parts) == 2:
            out[sec][key] = value
            continue
        target = out[sec][key]
        if not isinstance(target, dict):
            raise ConfigError(f"override {text!r}: {sec}.{key} is not a mapping")
        for p in parts[2:-1]:
            target = target.setdefault(p, {})
            if not isinstance(target, dict):
                raise ConfigError(f"override {text!r}: {p} is not a mapping")
        if value is None:
            target.pop(parts[-1], None)
        else:
            target[parts[-1]] = value
    return out


def _check_leaf(sec: str, key: str, opt: Opt, value: Any, source) -> Any:
    name = f"{sec}.{key}"
    kind = opt.kind
    nullable = kind.endswith("?")
    kind = kind.rstrip("?")
    if value is None:
        if nullable or kind == "any":
            return None
        raise ConfigError(f"{name} must not be null", source)

    def fail(what: str):
        raise ConfigError(f"{name} must be {what}, got {value!r}", source)

    if kind in ("int", "int+", "int0"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
            fail("an integer")
        value = int(value)
        if kind == "int+" and value <= 0:
            fail("a positive integer")
        if kind == "int0" and value < 0:
            fail("an integer >= 0")
        return value
    if kind in ("float", "float+", "float0", "prob"):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                fail("a number")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            fail("a number")
        value = float(value)
        if kind == "float+" and value <= 0:
            fail("a positive number")
        if kind == "float0" and value < 0:
            fail("a number >= 0")
        if kind == "prob" and not 0 <= value < 1:
            fail("a number in [0, 1)")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            fail("true or false")
        return value
    if kind in ("str", "path"):
        if not isinstance(value, (str, Path)) or not str(value):
            fail("a string")
        return str(value)
    if kind == "choice":
        v = str(value).lower()
        if v not in opt.choices:
            raise ConfigError(f"{name} must be one of {', '.join(opt.choices)}, got {value!r}"
                              f"{_suggest(v, opt.choices)}", source)
        return v
    if kind == "strlist":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            fail("a split name or a list of split names")
        return value
    if kind == "dict":
        if not isinstance(value, dict):
            fail("a mapping")
        return value
    return value


def validate(cfg: dict[str, Any], source: str | Path | None = None, require_dataset: bool = True) -> dict[str, Any]:
    """Check every key and cross-key rule; return the normalised config. Raises ``ConfigError``."""
    out = merge(default_config(), cfg, source)
    for sec, opts in SCHEMA.items():
        for key, opt in opts.items():
            out[sec][key] = _check_leaf(sec, key, opt, out[sec][key], source)

    if require_dataset and not out["data"]["dataset"]:
        raise ConfigError("data.dataset is required (the dataset description YAML)", source)

    # loss terms
    terms = out["loss"]["terms"]
    if not terms:
        raise ConfigError("loss.terms must list at least one loss with a weight, e.g. {ce: 1.0}", source)
    clean = {}
    for name, weight in terms.items():
        n = str(name).lower()
        if n not in LOSS_NAMES:
            raise ConfigError(f"loss.terms: unknown loss {name!r}{_suggest(n, LOSS_NAMES)}; losses are "
                              f"{', '.join(LOSS_NAMES)}", source)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0 or not math.isfinite(weight):
            raise ConfigError(f"loss.terms.{name} must be a weight >= 0, got {weight!r}", source)
        if weight > 0:
            clean[n] = float(weight)
    if not clean:
        raise ConfigError("loss.terms: every weight is 0", source)
    out["loss"]["terms"] = clean

    cw = out["loss"]["class_weights"]
    if cw is not None and cw != "auto":
        if not isinstance(cw, list) or not cw or not all(
                isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in cw):
            raise ConfigError(f"loss.class_weights must be null, 'auto' or a list of weights >= 0, got {cw!r}", source)
        out["loss"]["class_weights"] = [float(w) for w in cw]

    betas = out["optimizer"]["betas"]
    if (not isinstance(betas, (list, tuple)) or len(betas) != 2
            or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas)):
        raise ConfigError(f"optimizer.betas must be two numbers in [0, 1), got {betas!r}", source)
    out["optimizer"]["betas"] = [float(b) for b in betas]
    if out["optimizer"]["nesterov"] and out["optimizer"]["name"] == "sgd" and out["optimizer"]["momentum"] == 0:
        raise ConfigError("optimizer.nesterov needs optimizer.momentum > 0", source)

    ms = out["schedule"]["milestones"]
    if (not isinstance(ms, list) or not all(isinstance(m, (int, float)) and 0 < m < 1 for m in ms)
            or list(ms) != sorted(ms)):
        raise ConfigError(f"schedule.milestones must be increasing fractions of training in (0, 1), got {ms!r}", source)

    sampling = {"mode": "area", "class_balance": 0.5, **(out["data"]["sampling"] or {})}
    unknown = [k for k in sampling if k not in ("mode", "class_balance")]
    if unknown:
        raise ConfigError(f"data.sampling: unknown key {unknown[0]!r} (keys: mode, class_balance)", source)
    if sampling["mode"] not in ("uniform", "area"):
        raise ConfigError(f"data.sampling.mode must be uniform or area, got {sampling['mode']!r}", source)
    cb = sampling["class_balance"]
    if isinstance(cb, bool) or not isinstance(cb, (int, float)) or not 0 <= cb <= 1:
        raise ConfigError(f"data.sampling.class_balance must be a number in [0, 1], got {cb!r}", source)
    out["data"]["sampling"] = {"mode": sampling["mode"], "class_balance": float(cb)}

    tr = out["trainer"]
    if tr["max_epochs"] is None and tr["max_time"] is None and tr["max_steps"] is None:
        raise ConfigError("set trainer.max_epochs, trainer.max_steps or trainer.max_time (minutes)", source)
    if out["model"]["options"] is None:
        out["model"]["options"] = {}
    aug = out["data"]["augment"]
    if aug is not None and aug != "default" and not (isinstance(aug, list) and all(isinstance(a, dict) for a in aug)):
        raise ConfigError("data.augment must be 'default', null or a list of {name: ..., p: ...} entries", source)
    return out


def _resolve_one(cfg: dict[str, Any], sec: str, key: str, base_dir: Path) -> None:
    v = cfg.get(sec, {}).get(key)
    if isinstance(v, str) and v and not Path(v).expanduser().is_absolute():
        cfg[sec][key] = str((base_dir / Path(v).expanduser()).resolve())
    elif isinstance(v, str) and v:
        cfg[sec][key] = str(Path(v).expanduser())


def read_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError("config file not found", path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"unreadable config ({exc})", path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"invalid YAML{where}: {getattr(exc, 'problem', exc)}", path) from None
    return data or {}


def load_config(path: str | Path | dict | None = None, overrides: Iterable[str] = (),
                require_dataset: bool = True) -> dict[str, Any]:
    """Read a config file (or take a dict, or only defaults) + overrides; return the validated config.

    Relative paths in the file are resolved against the file's folder; relative paths given as
    overrides are resolved against the current directory. The result holds absolute paths.
    """
    source = None
    if path is None:
        user: dict[str, Any] = {}
        base_dir = Path.cwd()
    elif isinstance(path, dict):
        user = copy.deepcopy(path)
        base_dir = Path.cwd()
    else:
        source = Path(path)
        user = read_yaml(source)
        base_dir = source.resolve().parent
    cfg = merge(default_config(), user, source)
    given = {(sec, key) for sec, key in _PATH_KEYS if isinstance(user.get(sec), dict) and key in user[sec]}
    for sec, key in _PATH_KEYS:  # paths in the file: relative to the file; defaults: to the CWD
        _resolve_one(cfg, sec, key, base_dir if (sec, key) in given else Path.cwd())
    cfg = apply_overrides(cfg, overrides, base_dir=Path.cwd())
    return validate(cfg, source, require_dataset=require_dataset)


def get(cfg: dict[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for p in dotted.split("."):
        if not isinstance(node, dict) or p not in node:
            return default
        node = node[p]
    return node


__all__ = ["SCHEMA", "Opt", "default_config", "dump_config", "load_config", "validate", "merge",
           "apply_overrides", "parse_override", "read_yaml", "get", "LOSS_NAMES", "OPTIMIZERS", "SCHEDULES"]

