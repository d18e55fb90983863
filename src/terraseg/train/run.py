"""``train(config, overrides) -> TrainResult``: one training run from a config to a bundle.

Run directory (``output.dir/output.name``)::

    config.yaml            the resolved config (every key, absolute paths)
    metrics.csv            per-step/epoch metrics (Lightning CSVLogger)
    tensorboard/           TensorBoard event files
    checkpoints/           best-*.ckpt (by val mIoU) and last.ckpt (Lightning; used by --resume)
    plots/                 curves.png, confusion_matrix.png (updated after each validation)
    bundle/                the best model as a terraseg bundle (safetensors + bundle.json)
    best_metrics.json      validation metrics of the bundled model
"""

from __future__ import annotations

import csv
import datetime as _dt
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from terraseg.errors import ConfigError, DataError, TerrasegError

log = logging.getLogger("terraseg.train")


@dataclass
class TrainResult:
    run_dir: Path
    bundle_path: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)  # validation metrics of the bundled model
    epochs: int = 0
    global_step: int = 0
    is_global_zero: bool = True  # False in the other processes of a multi-process (DDP) run
    init_from: str | None = None  # what model.init_from loaded (one line), None without it


#: Every process of a multi-process run must agree on the run directory: the processes Lightning
#: starts for DDP re-run the command and inherit this variable; SLURM tasks share the job id.
RUN_NAME_ENV = "TERRASEG_RUN_NAME"


def _run_dir(cfg: dict) -> Path:
    name = cfg["output"]["name"] or os.environ.get(RUN_NAME_ENV)
    if not name:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        model = cfg["model"]["name"].replace(":", "-").replace("/", "-")
        job = os.environ.get("SLURM_JOB_ID")
        name = f"{model}-slurm{job}" if job else f"{model}-{stamp}"
    return Path(cfg["output"]["dir"]) / name


def _class_weights(cfg: dict, spec, samples: Sequence) -> list[float] | None:
    cw = cfg["loss"]["class_weights"]
    if cw is None:
        return None
    if cw != "auto":
        if len(cw) != spec.num_classes:
            raise ConfigError(f"loss.class_weights lists {len(cw)} weights for {spec.num_classes} classes "
                              f"({', '.join(spec.class_names)})")
        return list(cw)
    from terraseg.data.stats import compute_stats

    stats = compute_stats(spec, samples, classes=True)
    if sum(stats.class_pixels) == 0:
        raise DataError("the training images yield no labelled pixels, so class weights cannot be computed",
                        cfg["data"]["dataset"])
    return list(stats.class_weights)


def training_resolution(spec, samples: Sequence, most: int = 16) -> float | None:
    """The ground sampling distance (metres per pixel) of the training images, from their GeoTIFF
    transforms and the one ground-area rule (``terraseg.predict.ground``): the median over up to
    ``most`` georeferenced images, ``None`` when none is georeferenced (then the dataset YAML's
    ``resolution:`` is the only source)."""
    from terraseg.predict.ground import ground_resolution

    gsd = []
    for sample in list(samples)[:most]:
        info = spec.info(sample)
        if info.crs is None or info.transform is None:
            continue
        metres = ground_resolution(info.transform, info.crs, info.width, info.height)
        if metres:
            gsd.append(metres)
    return float(sorted(gsd)[len(gsd) // 2]) if gsd else None


def _check_labelled(spec, samples: Sequence, role: str, where) -> None:
    """Fail early when no mask of ``samples`` has a labelled pixel (stops at the first that has one)."""
    for s in samples:
        mask, _ = spec.read_mask(s)
        if (mask < spec.num_classes).any():
            return
    raise DataError(f"the {role} images yield no labelled pixels: every mask pixel is ignored or has a colour/value "
                    f"no class owns (check 'classes' and 'ignore' in the dataset description)", where)


def _quiet_lightning() -> None:
    for pat in (".*does not have many workers.*", ".*number of training batches.*smaller than the logging interval.*",
                ".*Checkpoint directory .* exists and is not empty.*", ".*Experiment logs directory .* exists.*",
                ".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*", ".*is_bf16_supported.*",
                ".*The `srun` command is available.*", ".*GPU available but not used.*"):
        warnings.filterwarnings("ignore", message=pat)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch.accelerators.cuda").setLevel(logging.WARNING)


def prepare(config: str | Path | dict | None, overrides: Iterable[str] = (), resume: str | Path | None = None):
    """Resolve the config (and resume checkpoint). Returns ``(cfg, run_dir, ckpt_path | None)``."""
    from terraseg.train.config import load_config

    overrides = list(overrides)
    if resume is not None:
        from terraseg.train.checkpoint_io import resume_checkpoint

        run_dir, chosen = Path(resume), None
        if run_dir.suffix == ".ckpt" and run_dir.parent.name == "checkpoints":  # a checkpoint of the run
            run_dir, chosen = run_dir.parent.parent, run_dir
        saved = run_dir / "config.yaml"
        if not saved.is_file():
            raise TerrasegError("not a terraseg run directory (config.yaml is missing)", run_dir)
        ckpt = resume_checkpoint(run_dir, chosen)  # damaged -> one line offering the newest intact one
        cfg = load_config(saved, overrides)
        cfg["output"]["dir"] = str(run_dir.resolve().parent)
        cfg["output"]["name"] = run_dir.resolve().name
        return cfg, run_dir.resolve(), ckpt
    cfg = load_config(config, overrides)
    run_dir = _run_dir(cfg).resolve()
    if (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").iterdir()):
        raise TerrasegError("run directory already holds a run; resume it with --resume, or choose another "
                            "output.name", run_dir)
    cfg["output"]["name"] = run_dir.name
    return cfg, run_dir, None


def train(config: str | Path | dict | None = None, overrides: Iterable[str] = (), resume: str | Path | None = None,
          callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train a model from a config file (or dict) plus ``section.key=value`` overrides.

    ``resume`` is a run directory: training continues from its ``checkpoints/last.ckpt`` (epoch,
    optimizer, schedule, callbacks) with its saved config; overrides may change e.g.
    ``trainer.max_epochs``. It may also name one checkpoint of a run (``RUN/checkpoints/X.ckpt``).
    ``callbacks`` are extra Lightning callbacks. A run that fails before its first checkpoint
    leaves no run directory behind.
    """
    from terraseg._io import check_output
    from terraseg.train.checkpoint_io import remove_failed_run

    cfg, run_dir, ckpt = prepare(config, overrides, resume)
    check_output(run_dir, "folder")
    existed = run_dir.exists()
    shared_name = os.environ.setdefault(RUN_NAME_ENV, run_dir.name) == run_dir.name
    try:
        return _train(cfg, run_dir, ckpt, callbacks)
    except BaseException as exc:
        if not existed and remove_failed_run(run_dir) and isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt("training interrupted before its first checkpoint; nothing was kept") from None
        raise
    finally:
        if shared_name:  # the next run of this process picks its own name
            os.environ.pop(RUN_NAME_ENV, None)


def _init_from_normalisation(cfg: dict, spec) -> tuple[list[float], list[float]] | None:
    """A fine-tuned model keeps the input statistics its source learnt with, unless the data set
    states its own (mean/std in the dataset YAML)."""
    if not cfg["model"].get("init_from") or spec.mean is not None or spec.std is not None:
        return None
    from terraseg.train.init_from import source_meta

    meta, _ = source_meta(cfg["model"]["init_from"])
    return (list(meta.mean), list(meta.std)) if meta.in_channels == spec.bands else None


def _train(cfg: dict, run_dir: Path, ckpt: Path | None, callbacks: Sequence[Any]) -> TrainResult:
    _quiet_lightning()

    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar

    from terraseg._io import write_text_atomic
    from terraseg._progress import progress_enabled
    from terraseg.bundle import BundleMeta
    from terraseg.data.spec import load_spec
    from terraseg.train.callbacks import RunArtifacts
    from terraseg.train.checkpoint_io import AtomicCheckpointIO
    from terraseg.train.config import dump_config
    from terraseg.train.data import SegmentationDataModule, select_samples
    from terraseg.train.module import SegmentationModule, is_multitask
    from terraseg.train.precision import resolve_precision
    from terraseg.train.tracking import build_callbacks, build_loggers, finish, log_artifacts, trainer_arguments

    user_callbacks = build_callbacks(cfg)  # before anything is written: a bad import path is one line

    spec = load_spec(cfg["data"]["dataset"])
    train_samples, val_samples = select_samples(spec, cfg["data"], cfg["trainer"]["seed"])
    from terraseg.data.ignored import check_ignored_share  # issue 17: refuse a palette that misses the masks

    check_ignored_share(spec, train_samples, cfg["data"]["dataset"])
    _check_labelled(spec, train_samples, "training", cfg["data"]["dataset"])
    _check_labelled(spec, val_samples, "validation", cfg["data"]["dataset"])
    class_weights = _class_weights(cfg, spec, train_samples)
    multitask = is_multitask(cfg["model"]["name"])
    dm = SegmentationDataModule(cfg, spec, train_samples, val_samples, multitask=multitask,
                                norm=_init_from_normalisation(cfg, spec))

    tr = cfg["trainer"]
    from terraseg.models.complexity import check_training_fits

    # a model that cannot fit is refused with an estimate, before anything is allocated
    check_training_fits(cfg["model"]["name"], cfg["model"]["options"], spec.bands, spec.num_classes,
                        int(cfg["data"]["crop_size"]), int(cfg["data"]["batch_size"]), tr["accelerator"])
    pl.seed_everything(tr["seed"], workers=True, verbose=False)
    module = SegmentationModule(cfg, in_channels=spec.bands, class_names=list(spec.class_names),
                                ignore_index=spec.ignore_index, class_weights=class_weights)
    init_line = None
    if cfg["model"].get("init_from") and ckpt is None:  # on --resume the checkpoint holds the weights
        from terraseg.train.init_from import load_matching

        init_line = load_matching(module.model, cfg["model"]["init_from"]).line()

    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", dump_config(cfg))
    mean, std = dm.norm_for_bundle()
    resolution = spec.resolution if spec.resolution is not None else training_resolution(spec, train_samples)

    def make_meta(metrics: dict) -> BundleMeta:
        return BundleMeta(
            architecture=cfg["model"]["name"], options=dict(cfg["model"]["options"]), in_channels=spec.bands,
            num_classes=spec.num_classes, classes=list(spec.class_names),
            colors=[list(map(int, c)) for c in spec.colors], ignore_index=int(spec.ignore_index),
            mean=mean, std=std, tile_size=int(cfg["data"]["crop_size"]), metrics=metrics,
            band_indexes=spec.band_indexes, resolution=resolution,
            extra={"dataset": spec.name, "run_dir": str(run_dir), "train_images": len(train_samples),
                   "val_images": len(val_samples), "loss": cfg["loss"]["terms"],
                   **({"init_from": cfg["model"]["init_from"]} if cfg["model"].get("init_from") else {})},
        )

    artifacts = RunArtifacts(run_dir, make_meta, plots=cfg["output"]["plots"])
    cbs: list = [
        ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best-epoch{epoch:03d}-miou{val_miou:.4f}",
                        monitor="val_miou", mode="max", save_top_k=1, save_last=False, auto_insert_metric_name=False),
        # last.ckpt after every training epoch (after its validation), whatever the score: --resume
        ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", monitor=None, save_top_k=1,
                        save_on_train_epoch_end=True, enable_version_counter=False),
        artifacts,
    ]
    if tr["early_stopping_patience"]:
        cbs.append(EarlyStopping(monitor="val_miou", mode="max", patience=tr["early_stopping_patience"]))
    show_bar = bool(tr["progress_bar"]) and progress_enabled()
    if show_bar:
        cbs.append(TQDMProgressBar(refresh_rate=1))
    cbs += user_callbacks + list(callbacks)

    loggers = build_loggers(cfg, run_dir)
    csv_logger = loggers[0]
    if ckpt is not None:
        _keep_metrics_csv(csv_logger, run_dir / "metrics.csv", ckpt)
    kwargs: dict[str, Any] = dict(
        default_root_dir=str(run_dir), max_epochs=tr["max_epochs"], callbacks=cbs, logger=loggers,
        check_val_every_n_epoch=tr["val_every"], accelerator=tr["accelerator"], devices=tr["devices"],
        strategy=tr["strategy"], num_nodes=tr["num_nodes"],
        precision=resolve_precision(tr["precision"], tr["accelerator"]),
        log_every_n_steps=tr["log_every_n_steps"], deterministic=tr["deterministic"] or None,
        gradient_clip_val=tr["gradient_clip_val"], enable_progress_bar=show_bar, enable_model_summary=show_bar,
        num_sanity_val_steps=1, use_distributed_sampler=False, plugins=[AtomicCheckpointIO()],
    )
    if tr["max_time"] is not None:
        kwargs["max_time"] = _dt.timedelta(minutes=tr["max_time"])
    if tr.get("max_steps") is not None:
        kwargs["max_steps"] = int(tr["max_steps"])
        if tr["max_epochs"] is None:
            kwargs["max_epochs"] = -1  # the step count alone ends training
    if tr["limit_train_batches"] is not None:
        kwargs["limit_train_batches"] = _limit(tr["limit_train_batches"])
    if tr["limit_val_batches"] is not None:
        kwargs["limit_val_batches"] = _limit(tr["limit_val_batches"])
    extra = trainer_arguments(cfg)  # any other lightning.Trainer argument, as given
    if "plugins" in extra:  # the user's plugins come besides terraseg's atomic checkpoint writer
        given = extra.pop("plugins")
        kwargs["plugins"] = [*kwargs.get("plugins", []), *(given if isinstance(given, list) else [given])]
    kwargs.update(extra)
    try:
        trainer = pl.Trainer(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid trainer settings: {exc}") from None
    except Exception as exc:
        if exc.__class__.__name__ == "MisconfigurationException":
            raise ConfigError(f"invalid trainer settings: {exc}") from None
        raise

    try:
        # resuming loads our own Lightning checkpoint, tensors and plain containers only
        trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt) if ckpt else None, weights_only=True)
    except SystemExit:
        if trainer.interrupted:  # Lightning turns Ctrl-C into sys.exit(1) after a graceful shutdown
            raise KeyboardInterrupt(f"training interrupted; continue with: terraseg train --resume {run_dir}") from None
        raise

    # A wall-clock stop can end training mid-epoch after the last validation: validate the final
    # weights too, so the bundle is the best model actually trained.
    validated_at = getattr(module, "validated_at_step", None)
    if trainer.global_step > 0 and validated_at != trainer.global_step and not trainer.interrupted:
        trainer.validate(module, datamodule=dm, verbose=False)

    if trainer.is_global_zero:
        for lg in trainer.loggers:
            lg.save()
        if cfg["output"]["plots"] and (run_dir / "metrics.csv").is_file():
            try:
                from terraseg.plots import plot_curves

                plot_curves(run_dir / "metrics.csv", run_dir / "plots" / "curves.png")
            except Exception as exc:  # pragma: no cover
                log.warning("could not update plots: %s", exc)
        log_artifacts(trainer.loggers, run_dir, cfg)
    finish(trainer.loggers)
    bundle = artifacts.bundle_dir if (artifacts.bundle_dir / "bundle.json").is_file() else None
    metrics: dict[str, Any] = {}
    if bundle is not None:
        from terraseg.bundle import read_meta

        metrics = dict(read_meta(bundle).metrics)
    return TrainResult(run_dir=run_dir, bundle_path=bundle, metrics=metrics,
                       epochs=int(trainer.current_epoch), global_step=int(trainer.global_step),
                       is_global_zero=bool(trainer.is_global_zero), init_from=init_line)


def _keep_metrics_csv(csv_logger, path: Path, ckpt: Path) -> None:
    """A resumed run appends to metrics.csv (Lightning's CSV writer would start it afresh).

    Rows logged after the checkpoint (the epoch that was interrupted) are dropped: that epoch runs
    again and logs them anew.
    """
    from terraseg.train.checkpoint_io import checkpoint_epoch

    if not path.is_file():
        return
    # bytes, not text: the csv module ends rows with \r\n, which text mode would turn into \n, leaving a
    # resumed file with two kinds of line ends (and not byte-identical to an uninterrupted run's)
    old = _rows_until_epoch(path.read_bytes().decode("utf-8"), checkpoint_epoch(ckpt))
    writer = csv_logger.experiment  # creating the writer removes the old file ...
    if not hasattr(writer, "metrics_keys"):
        return
    path.write_bytes(old.encode("utf-8"))  # ... so put it back and continue its columns
    header = next(csv.reader([old.splitlines()[0]])) if old.strip() else []
    writer.metrics_keys = sorted(header)


def _rows_until_epoch(text: str, last_epoch: int) -> str:
    """The CSV ``text`` without the rows of epochs after ``last_epoch``."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return text
    header = next(csv.reader([lines[0]]))
    if "epoch" not in header:
        return text
    col = header.index("epoch")
    kept = [lines[0]]
    for line in lines[1:]:
        row = next(csv.reader([line]), [])
        try:
            if int(float(row[col])) > last_epoch:
                continue
        except (IndexError, ValueError):
            pass
        kept.append(line)
    return "".join(kept)


#: The config of examples/train-sample.yaml: a small U-Net on the generated sample, ~2 minutes on CPU.
SAMPLE_CONFIG: dict[str, Any] = {
    "data": {"val_fraction": 0.25, "crop_size": 128, "val_crop_size": None, "batch_size": 8,
             "samples_per_epoch": 64},
    "model": {"name": "unet", "options": {"base_channels": 16, "depth": 3}},
    "loss": {"terms": {"ce": 1.0, "dice": 0.5}},
    "optimizer": {"name": "adamw", "lr": 0.003, "weight_decay": 0.0001},
    "schedule": {"name": "poly", "warmup_steps": 10},
    "trainer": {"max_epochs": 12, "max_time": 2.0, "seed": 0},
}


def train_sample(dataset_yaml: str | Path, out_dir: str | Path, minutes: float = 2.0, name: str = "train",
                 overrides: Iterable[str] = ()) -> TrainResult:
    """Train the small sample model (``SAMPLE_CONFIG``) on ``dataset_yaml`` into ``out_dir/name``.

    Used by ``make demo``: stops after 12 epochs or ``minutes`` of training, whichever comes first.
    """
    import copy

    cfg = copy.deepcopy(SAMPLE_CONFIG)
    cfg["data"]["dataset"] = str(Path(dataset_yaml).resolve())
    cfg["output"] = {"dir": str(Path(out_dir).resolve()), "name": name}
    cfg["trainer"]["max_time"] = float(minutes)
    return train(cfg, overrides)


def _limit(v: float):
    return int(v) if float(v).is_integer() and v >= 1 else float(v)


__all__ = ["TrainResult", "train", "train_sample", "prepare", "SAMPLE_CONFIG"]
