"""``terraseg train CONFIG.yaml [section.key=value ...]``: train a model from a validated config."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from terraseg.cli import app


@app.command("train", context_settings={"allow_interspersed_args": True, "ignore_unknown_options": True})
def train_command(
    config: Optional[Path] = typer.Argument(
        None, metavar="CONFIG.yaml", help="Training config (YAML). Not needed with --resume or --print-config."),
    overrides: Optional[List[str]] = typer.Argument(
        None, metavar="[section.key=value]...",
        help="Config overrides, e.g. trainer.max_epochs=5 --optimizer.lr=0.01 loss.terms.dice=0.5 "
             "trainer.devices=[0,1] model.options='{base_channels: 32}' (values are YAML)."),
    set_: Optional[List[str]] = typer.Option(
        None, "--set", "-s", metavar="section.key=value", help="A config override (repeatable); same as the "
                                                               "positional form."),
    print_config: bool = typer.Option(
        False, "--print-config", help="Print the full config (defaults + CONFIG + overrides) and exit."),
    print_schema: bool = typer.Option(
        False, "--print-schema", help="Print the JSON Schema of training configs (for editors) and exit."),
    resume: Optional[Path] = typer.Option(
        None, "--resume", metavar="RUN_DIR", help="Continue an interrupted run from RUN_DIR/checkpoints/last.ckpt "
                                                  "(epoch, optimizer, schedule) with its saved config."),
    devices: Optional[str] = typer.Option(None, "--devices", help="Lightning devices: a count, ids '0,1' or auto."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="Lightning strategy, e.g. ddp."),
    num_nodes: Optional[int] = typer.Option(None, "--num-nodes", min=1, help="Number of nodes (multi-node DDP)."),
    precision: Optional[str] = typer.Option(None, "--precision",
                                            help="auto, 32-true, 16-mixed, bf16-mixed (GPU), ..."),
    accelerator: Optional[str] = typer.Option(None, "--accelerator", help="auto, cpu or gpu."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Folder for run directories (output.dir)."),
    name: Optional[str] = typer.Option(None, "--name", help="Run directory name (output.name)."),
) -> None:
    """Train a segmentation model; the best model is saved as a bundle in RUN_DIR/bundle.

    Every config key can be set on the command line as section.key=value, --section.key=value or
    --set section.key=value; values are YAML, so lists and mappings work. trainer.* also takes any
    lightning.Trainer argument (e.g. trainer.accumulate_grad_batches=4). Examples:

      terraseg train --print-config

      terraseg train examples/train-sample.yaml data.dataset=demo/dataset.yaml trainer.max_epochs=5

      terraseg train --resume runs/unet-20250101-120000 trainer.max_epochs=40
    """
    from terraseg.errors import ConfigError

    if print_schema:
        from importlib.resources import files

        typer.echo(files("terraseg.schemas").joinpath("training.schema.json").read_text(encoding="utf-8"))
        return
    items = _join_spaced([*(overrides or []), *(set_ or [])])
    if config is not None and not config.exists() and (str(config).startswith("--") or (
            "=" in str(config) and "/" not in str(config).split("=")[0])):
        items = _join_spaced([str(config), *items])  # only overrides were given (e.g. with --resume)
        config = None
    for flag, value in (("devices", devices), ("strategy", strategy), ("num_nodes", num_nodes),
                        ("precision", precision), ("accelerator", accelerator)):
        if value is not None:
            items.append(f"trainer.{flag}={value}")
    if output is not None:
        items.append(f"output.dir={output}")
    if name is not None:
        items.append(f"output.name={name}")

    if print_config:
        from terraseg.train.config import default_config, dump_config, load_config

        if resume is not None:
            cfg = load_config(resume / "config.yaml", items)
        elif config is not None or items:
            cfg = load_config(config, items, require_dataset=False)
        else:
            cfg = default_config()
        typer.echo(dump_config(cfg, comments=True))
        return
    if config is None and resume is None and not items:
        raise ConfigError("give a training config (CONFIG.yaml), overrides such as data.dataset=DATA.yaml, or "
                          "--resume RUN_DIR; "
                          "`terraseg train --print-config` shows every key")
    if config is not None and resume is not None:
        raise ConfigError("give either CONFIG.yaml or --resume RUN_DIR, not both (overrides still apply)")

    from terraseg.train.run import train

    try:
        result = train(config, items, resume=resume)
    except KeyboardInterrupt as exc:
        if str(exc):
            typer.echo(str(exc), err=True)
        raise
    if not result.is_global_zero:
        return
    if result.init_from:
        typer.echo(result.init_from)
    typer.echo(f"run directory: {result.run_dir}")
    if result.bundle_path is not None:
        m = result.metrics
        parts = []
        for key, label in (("miou", "mIoU"), ("pixel_accuracy", "PA"), ("mean_class_accuracy", "mean class acc")):
            if m.get(key) is not None:
                parts.append(f"{label} {100 * float(m[key]):.2f} %")
        typer.echo(f"best model:    {result.bundle_path}  (validation {', '.join(parts)}, epoch {m.get('epoch')})")
    else:
        typer.echo("no bundle was written (training ended before the first validation)")


def _join_spaced(items: list[str]) -> list[str]:
    """``--trainer.max_epochs 5`` (two words) is ``--trainer.max_epochs=5``."""
    out: list[str] = []
    for item in items:
        if out and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={item}"
        else:
            out.append(item)
    return out
