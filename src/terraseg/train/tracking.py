"""Experiment tracking and extra callbacks from the config's ``logger:`` and ``callbacks:`` keys.

``metrics.csv`` (Lightning's CSVLogger) is always written: the plots and ``--resume`` read it. The
``logger:`` entries add TensorBoard (default), MLflow (``pip install terraseg[mlflow]``) or Weights
& Biases (``terraseg[wandb]``); at the end of a run the bundle and the plots are stored with the
MLflow / W&B run as artefacts. ``callbacks:`` entries are Lightning callbacks given by import path.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from terraseg.errors import ConfigError

_EXTRAS = {"mlflow": ("mlflow", "terraseg[mlflow]"), "wandb": ("wandb", "terraseg[wandb]")}


def _require(name: str) -> None:
    module, extra = _EXTRAS[name]
    try:
        importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"key 'logger': {name} is not installed; pip install '{extra}'") from None


def build_loggers(cfg: dict, run_dir: Path) -> list:
    """CSVLogger (metrics.csv) first, then one Lightning logger per ``logger:`` entry."""
    from lightning.pytorch.loggers import CSVLogger

    loggers: list = [CSVLogger(save_dir=str(run_dir), name="", version="")]
    for i, spec in enumerate(cfg["logger"]):
        name, options = spec["name"], dict(spec["options"])
        run_name = spec["run_name"] or run_dir.name
        try:
            if name == "tensorboard":
                from lightning.pytorch.loggers import TensorBoardLogger

                loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="",
                                                 default_hp_metric=False, **options))
            elif name == "mlflow":
                _require(name)
                from lightning.pytorch.loggers import MLFlowLogger

                uri = spec["tracking_uri"] or os.environ.get("MLFLOW_TRACKING_URI") or \
                    Path(cfg["output"]["dir"]).resolve().joinpath("mlruns").as_uri()
                if uri.startswith("file:"):  # MLflow 3 keeps the file store only on request
                    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
                loggers.append(MLFlowLogger(experiment_name=spec["experiment"], run_name=run_name,
                                            tracking_uri=uri, **options))
            elif name == "wandb":
                _require(name)
                from lightning.pytorch.loggers import WandbLogger

                loggers.append(WandbLogger(project=spec["experiment"], name=run_name, save_dir=str(run_dir),
                                           offline=spec["offline"], **options))
        except TypeError as exc:
            raise ConfigError(f"key 'logger[{i}].options': {exc}") from None
    return loggers


def build_callbacks(cfg: dict) -> list:
    """Instances of the ``callbacks:`` entries (``class_path`` + ``init_args``)."""
    out = []
    for i, spec in enumerate(cfg["callbacks"]):
        path = spec["class_path"]
        module, _, name = path.rpartition(".")
        module = module or "lightning.pytorch.callbacks"
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"key 'callbacks[{i}].class_path': cannot import {path!r} ({exc})") from None
        try:
            out.append(cls(**spec["init_args"]))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"key 'callbacks[{i}].init_args': {name}: {exc}") from None
        import lightning.pytorch as pl

        if not isinstance(out[-1], pl.Callback):
            raise ConfigError(f"key 'callbacks[{i}].class_path': {path!r} is not a Lightning callback")
    return out


def trainer_arguments(cfg: dict) -> dict[str, Any]:
    """The ``trainer:`` keys that go to ``lightning.Trainer`` unchanged (those terraseg does not list)."""
    from terraseg.schemas.training import Trainer

    return {k: v for k, v in cfg["trainer"].items() if k not in Trainer.model_fields}


def log_artifacts(loggers: list, run_dir: Path, cfg: dict) -> None:
    """Store the bundle, the plots and config.yaml with the MLflow / W&B runs that want them."""
    wanted = {spec["name"] for spec in cfg["logger"] if spec["log_artifacts"]}
    folders = [(run_dir / "bundle", "bundle"), (run_dir / "plots", "plots")]
    for lg in loggers:
        kind = type(lg).__name__
        if kind == "MLFlowLogger" and "mlflow" in wanted:
            for folder, name in folders:
                if folder.is_dir():
                    lg.experiment.log_artifacts(lg.run_id, str(folder), artifact_path=name)
            lg.experiment.log_artifact(lg.run_id, str(run_dir / "config.yaml"))
        elif kind == "WandbLogger" and "wandb" in wanted:
            import wandb

            for folder, name in folders:
                if folder.is_dir():
                    art = wandb.Artifact(f"{run_dir.name}-{name}", type="model" if name == "bundle" else "plots")
                    art.add_dir(str(folder))
                    lg.experiment.log_artifact(art)


def finish(loggers: list) -> None:
    """Close runs that stay open otherwise: W&B writes through a service process, which has written
    everything only once it is torn down."""
    for lg in loggers:
        if type(lg).__name__ == "WandbLogger":
            import wandb

            wandb.finish()
            wandb.teardown()
