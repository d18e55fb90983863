"""The training config as pydantic models: every key with its type, default and help text.

``terraseg.train.config`` merges a YAML file and command-line overrides over these defaults and
validates the result with ``TrainConfig``; ``--print-config`` and the JSON Schema are generated
from the same models. ``trainer:`` also takes any other ``lightning.Trainer`` argument (checked
against Trainer's signature when the config is loaded).
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from terraseg.schemas._validate import Float, KeyProblem, Strict, choice, one_or_many

LOSS_NAMES = ("ce", "focal", "dice", "lovasz", "tanimoto")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("poly", "cosine", "step", "constant")
PRECISIONS = ("auto", "32", "32-true", "16-mixed", "bf16-mixed", "bf16-true", "16-true", "64-true")
LOGGERS = ("tensorboard", "mlflow", "wandb")
#: Trainer arguments terraseg sets itself, and where the config sets them instead.
TRAINER_RESERVED = {"callbacks": "use the top-level 'callbacks:' list", "logger": "use the top-level 'logger:' key",
                    "default_root_dir": "use output.dir and output.name"}

PosInt = Annotated[int, Field(gt=0)]
Count0 = Annotated[int, Field(ge=0)]
PosFloat = Annotated[Float, Field(gt=0)]
Fraction = Annotated[Float, Field(ge=0, lt=1)]
SplitNames = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1),
                       *one_or_many({"type": "string"}, "a split name or a list of split names")]


def _mapping_or_empty(v: Any) -> Any:
    return {} if v is None else v


class Sampling(Strict):
    """How training crops are drawn."""

    mode: Literal["uniform", "area"] = Field(
        "area", description="uniform: every image equally often; area: images in proportion to their area")
    class_balance: Annotated[Float, Field(ge=0, le=1)] = Field(
        0.5, description="probability that a crop is centred on a pixel of a class drawn uniformly among those "
                         "present, so rare classes are seen often (0 = plain random crops)")


class Data(Strict):
    dataset: str | None = Field(None, description="dataset description YAML (see `terraseg data`); required")
    split: str | None = Field(None, description="split JSON from `terraseg data split`; null = the dataset's own split "
                                                "file, else hold out val_fraction of the images (whole groups)")
    train_splits: SplitNames = Field(["train"], description="split names used for training")
    val_splits: SplitNames = Field(["val"], description="split names used for validation")
    val_fraction: Fraction = Field(0.2, description="share of images held out for validation when split is null")
    crop_size: PosInt = Field(256, description="training crop size in pixels (also the bundle's tile_size)")
    val_crop_size: PosInt | None = Field(None, description="validation crop size; null = whole images")
    batch_size: PosInt = Field(8, description="training batch size")
    samples_per_epoch: PosInt | None = Field(None, description="random crops per training epoch; null = one per image")
    augment: Literal["default"] | list[dict[str, Any]] | None = Field(
        "default", description="albumentations pipeline (list of {name: ..., p: ...}), null, or 'default' (the "
                               "dataset's augment list, else flips + 90° rotations)")
    num_workers: Count0 = Field(0, description="DataLoader worker processes (0 = load in the main process)")
    sampling: Annotated[Sampling, BeforeValidator(_mapping_or_empty)] = Field(
        default_factory=Sampling, description="how training crops are drawn")


class ModelSection(Strict):
    name: str = Field("unet", min_length=1, description="model registry name (`terraseg models list`)")
    options: Annotated[dict[str, Any], BeforeValidator(_mapping_or_empty)] = Field(
        default_factory=dict, description="keyword options for the model builder")
    init_from: str | None = Field(
        None, min_length=1,
        description="start from the weights of a bundle folder or a built-in model (e.g. dubai-landcover): every "
                    "weight whose name and shape match is loaded, the rest (a head for other classes) starts fresh; "
                    "model.name and model.options then default to that model's")


class Loss(Strict):
    terms: dict[str, Annotated[Float, Field(ge=0)]] = Field(
        {"ce": 1.0, "dice": 0.5}, description="weighted sum of losses: {ce, focal, dice, lovasz, tanimoto: weight}")
    class_weights: Literal["auto"] | list[Annotated[Float, Field(ge=0)]] | None = Field(
        "auto", description="'auto' (median-frequency weights from the training masks), null (none) or one weight "
                            "per class (ce, focal, dice)")
    label_smoothing: Fraction = Field(0.0, description="cross-entropy label smoothing")
    focal_gamma: Annotated[Float, Field(ge=0)] = Field(2.0, description="focal loss gamma")
    tanimoto_class_weights: bool = Field(True, description="Tanimoto: weight classes by 1/volume² (ResUNet-a paper)")

    @field_validator("terms")
    @classmethod
    def _known_losses(cls, terms: dict[str, float]) -> dict[str, float]:
        out = {}
        for name, weight in terms.items():
            n = name.lower()
            if n not in LOSS_NAMES:
                close = difflib.get_close_matches(n, LOSS_NAMES, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"unknown loss {name!r}{hint}; losses are {', '.join(LOSS_NAMES)}")
            if weight > 0:
                out[n] = float(weight)
        if not out:
            raise ValueError("list at least one loss with a weight > 0, e.g. {ce: 1.0}")
        return out


class Optimizer(Strict):
    name: choice(*OPTIMIZERS) = Field("adamw", description="sgd, adam or adamw")  # type: ignore[valid-type]
    lr: PosFloat = Field(1e-3, description="base learning rate (encoder)")
    weight_decay: Annotated[Float, Field(ge=0)] = Field(1e-4, description="weight decay")
    momentum: Fraction = Field(0.9, description="SGD momentum")
    nesterov: bool = Field(False, description="SGD Nesterov momentum")
    betas: Annotated[list[Fraction], Field(min_length=2, max_length=2)] = Field(
        [0.9, 0.999], description="Adam/AdamW betas")
    head_lr_multiplier: PosFloat = Field(1.0, description="learning-rate factor for decoder/head parameters (e.g. 10)")

    @model_validator(mode="after")
    def _nesterov(self) -> "Optimizer":
        if self.nesterov and self.name == "sgd" and self.momentum == 0:
            raise KeyProblem("optimizer.nesterov", "needs optimizer.momentum > 0")
        return self


class Schedule(Strict):
    name: choice(*SCHEDULES) = Field("poly", description="poly, cosine, step or constant")  # type: ignore[valid-type]
    warmup_steps: Count0 = Field(20, description="linear warmup length in optimizer steps")
    warmup_start_factor: Fraction = Field(0.01, description="learning-rate factor at the first warmup step")
    power: PosFloat = Field(0.9, description="poly: lr * (1 - progress) ** power")
    min_lr_factor: Fraction = Field(0.0, description="poly/cosine: final learning rate as a factor of lr")
    milestones: list[Annotated[Float, Field(gt=0, lt=1)]] = Field(
        [0.6, 0.85], description="step: decay points as fractions of training (0..1)")
    gamma: PosFloat = Field(0.1, description="step: factor applied at each milestone")

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, ms: list[float]) -> list[float]:
        if ms != sorted(ms):
            raise ValueError(f"must be increasing fractions of training, got {ms}")
        return ms


def _precision(v: Any) -> Any:
    return str(v).lower() if isinstance(v, (int, str)) and not isinstance(v, bool) else v


class Trainer(Strict):
    """terraseg's trainer keys; any other ``lightning.Trainer`` argument may be added."""

    model_config = {"extra": "allow"}

    max_epochs: PosInt | None = Field(50, description="number of epochs (null = until max_time)")
    max_time: PosFloat | None = Field(None, description="wall-clock budget in minutes (null = no limit)")
    max_steps: PosInt | None = Field(None, description="optimizer steps (null = no limit): fixed compute, whatever "
                                                        "the machine load")
    val_every: PosInt = Field(1, description="validate every N epochs")
    seed: Count0 = Field(0, description="random seed (weights, crops, augmentation)")
    precision: Annotated[Literal[PRECISIONS], BeforeValidator(_precision)] = Field(  # type: ignore[valid-type]
        "auto", description="auto (bf16-mixed on a bf16 GPU or an AVX512-BF16/AMX CPU, else 32-true or "
                            "16-mixed), ...")
    accelerator: str = Field("auto", description="auto, cpu, gpu, ...")
    devices: int | str | list[int] = Field("auto", description="number of devices, a list of ids, or auto")
    strategy: str = Field("auto", description="auto, ddp, ...")
    num_nodes: PosInt = Field(1, description="number of nodes for multi-node DDP")
    early_stopping_patience: PosInt | None = Field(
        None, description="stop after N validations without mIoU gain (null = off)")
    log_every_n_steps: PosInt = Field(10, description="logging interval in steps")
    deterministic: bool = Field(False, description="ask torch for deterministic algorithms")
    channels_last: bool = Field(True, description="channels-last (NHWC) memory layout for convolutions (1.2x "
                                                  "faster on the CPU measured, see benchmarks/train_speed.py)")
    gradient_clip_val: PosFloat | None = Field(None, description="clip gradient norm (null = off)")
    limit_train_batches: PosFloat | None = Field(None, description="Lightning limit_train_batches (debugging)")
    limit_val_batches: PosFloat | None = Field(None, description="Lightning limit_val_batches (debugging)")
    progress_bar: bool = Field(True, description="show the progress bar (loss and ETA)")

    @model_validator(mode="after")
    def _budget(self) -> "Trainer":
        if self.max_epochs is None and self.max_time is None and self.max_steps is None:
            raise KeyProblem("trainer.max_time", "set trainer.max_epochs, trainer.max_steps or trainer.max_time "
                                                 "(minutes)")
        for key in self.model_extra or {}:
            if key in TRAINER_RESERVED:
                raise KeyProblem(f"trainer.{key}", f"is set by terraseg; {TRAINER_RESERVED[key]}")
        return self


class Output(Strict):
    dir: str = Field("runs", min_length=1, description="folder that holds run directories")
    name: str | None = Field(None, description="run directory name (null = <model>-<UTC timestamp>)")
    plots: bool = Field(True, description="update curves and confusion-matrix plots after each validation")


class Logger(Strict):
    """One experiment logger (metrics.csv is always written besides)."""

    name: choice(*LOGGERS) = Field(description="tensorboard, mlflow or wandb")  # type: ignore[valid-type]
    tracking_uri: str | None = Field(None, description="mlflow: where runs go, e.g. file:///abs/mlruns, "
                                                       "sqlite:///mlflow.db or http://host:5000; null = "
                                                       "$MLFLOW_TRACKING_URI, else <output.dir>/mlruns")
    experiment: str = Field("terraseg", min_length=1, description="mlflow experiment / wandb project name")
    run_name: str | None = Field(None, description="name of the run (null = the run directory name)")
    offline: bool = Field(False, description="wandb: write the run to files only (`wandb sync` uploads it later)")
    log_artifacts: bool = Field(True, description="mlflow, wandb: store the bundle and plots with the run")
    options: Annotated[dict[str, Any], BeforeValidator(_mapping_or_empty)] = Field(
        default_factory=dict, description="more keyword arguments for the Lightning logger class")


def _loggers(v: Any) -> Any:
    """``logger: mlflow``, ``logger: {name: mlflow, ...}`` and lists of those; null or 'none' = none."""
    if v is None or v == "none":
        return []
    items = v if isinstance(v, list) else [v]
    return [{"name": x} if isinstance(x, str) else x for x in items]


class Callback(Strict):
    class_path: str = Field(min_length=1, description="import path of a Lightning callback class, e.g. "
                                                      "lightning.pytorch.callbacks.LearningRateMonitor (a bare "
                                                      "name is looked up in lightning.pytorch.callbacks)")
    init_args: Annotated[dict[str, Any], BeforeValidator(_mapping_or_empty)] = Field(
        default_factory=dict, description="keyword arguments for the class")


def _callbacks(v: Any) -> Any:
    if v is None:
        return []
    items = v if isinstance(v, list) else [v]
    return [{"class_path": x} if isinstance(x, str) else x for x in items]


def _section(v: Any) -> Any:
    return {} if v is None else v


class TrainConfig(Strict):
    """terraseg training config."""

    data: Annotated[Data, BeforeValidator(_section)] = Field(default_factory=Data)
    model: Annotated[ModelSection, BeforeValidator(_section)] = Field(default_factory=ModelSection)
    loss: Annotated[Loss, BeforeValidator(_section)] = Field(default_factory=Loss)
    optimizer: Annotated[Optimizer, BeforeValidator(_section)] = Field(default_factory=Optimizer)
    schedule: Annotated[Schedule, BeforeValidator(_section)] = Field(default_factory=Schedule)
    trainer: Annotated[Trainer, BeforeValidator(_section)] = Field(default_factory=Trainer)
    output: Annotated[Output, BeforeValidator(_section)] = Field(default_factory=Output)
    logger: Annotated[list[Logger], BeforeValidator(_loggers)] = Field(
        [Logger(name="tensorboard")], description="experiment loggers besides metrics.csv: tensorboard, mlflow, "
                                                  "wandb; a name, a mapping or a list of them, null for none")
    callbacks: Annotated[list[Callback], BeforeValidator(_callbacks)] = Field(
        default_factory=list, description="extra Lightning callbacks: [{class_path: ..., init_args: {...}}]")


def training_json_schema(trainer_args: list[str] | None = None) -> dict[str, Any]:
    """JSON Schema of the training config; ``trainer_args`` (lightning.Trainer's argument names)
    become the allowed extra ``trainer:`` keys."""
    schema = TrainConfig.model_json_schema()
    props = schema["properties"]
    logger_ref = {"$ref": "#/$defs/Logger"}
    name = {"enum": list(LOGGERS) + ["none"]}
    props["logger"] = {"description": props["logger"]["description"], "anyOf": [
        name, logger_ref, {"type": "null"}, {"type": "array", "items": {"anyOf": [name, logger_ref]}}]}
    cb = {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/Callback"}]}
    props["callbacks"] = {"description": props["callbacks"]["description"], "anyOf": [
        {"type": "null"}, {"type": "array", "items": cb}]}
    trainer = schema["$defs"]["Trainer"]
    if trainer_args is not None:
        own = set(trainer["properties"])
        extra = sorted(a for a in trainer_args if a not in own and a not in TRAINER_RESERVED)
        trainer["properties"].update({a: {"description": f"lightning.Trainer argument {a!r}"} for a in extra})
        trainer["additionalProperties"] = False
    for sec in ("data", "model", "loss", "optimizer", "schedule", "trainer", "output"):
        props[sec] = {"anyOf": [props[sec], {"type": "null"}]}
    return schema
