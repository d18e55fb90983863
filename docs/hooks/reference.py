"""MkDocs hook: the reference pages are generated from the code at build time, never copied.

* ``reference/cli.md``: every command and option of the typer app ``terraseg.cli.app`` (walked as
  its click command tree, ``typer.main.get_command``);
* ``reference/config.md``, ``reference/dataset.md``, ``reference/bundle.md``: every key of the
  shipped JSON Schemas (``src/terraseg/schemas/*.schema.json``) with type, default and description;
* ``reference/api/*.md``: one mkdocstrings page per public area, members taken from the packages'
  lazy export tables; a package that cannot be imported is a warning, so ``--strict`` fails.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from pathlib import Path

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.reference")

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "src" / "terraseg" / "schemas"

# ---------------------------------------------------------------------------------------------- CLI


def command_tree():
    """The click command of the typer app (typer vendors click, so no isinstance on click types)."""
    import typer.main

    from terraseg.cli import app

    return typer.main.get_command(app)


def walk(command, path=("terraseg",)):
    """Yield (path tuple, command) for the root and every sub-command, groups before their members."""
    yield path, command
    for name in sorted(getattr(command, "commands", {}) or {}):
        yield from walk(command.commands[name], path + (name,))


def anchor(path) -> str:
    return "-".join(path).replace("_", "-")


def _md(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _context(path, command, parent=None):
    return command.make_context(path[-1], [], resilient_parsing=True, parent=parent)


def _type_name(param, ctx) -> str:
    if getattr(param, "is_flag", False):
        return "flag"
    shown = param.display_type(ctx).strip("<>")
    return f"`{shown}`" if shown else ""


def _help_and_default(param, ctx) -> tuple[str, str]:
    """The help text and default exactly as ``--help`` shows them."""
    record = param.get_help_record(ctx) if param.param_type_name == "option" else None
    text = record[1] if record else (getattr(param, "help", "") or "")
    default = ""
    match = re.search(r"\s*\[(?:default: ([^\]]*)|(required))\]\s*$", text)
    if match:
        default = f"`{match.group(1)}`" if match.group(1) is not None else "required"
        text = text[: match.start()]
    if not default and getattr(param, "required", False):
        default = "required"
    return _md(text), default


def _usage(path, command) -> str:
    pieces = []
    for p in command.params:
        if p.param_type_name == "argument":
            name = p.name.upper()
            if getattr(p, "nargs", 1) == -1:
                name += "..."
            pieces.append(name if p.required else f"[{name}]")
    if getattr(command, "commands", None):
        pieces.insert(0, "COMMAND")
    return " ".join((*path, "[OPTIONS]", *pieces))


def cli_markdown() -> str:
    root = command_tree()
    lines = [
        "# Command line",
        "",
        "Generated at build time from the typer application `terraseg.cli.app`: every command, argument",
        "and option, with the help text `terraseg COMMAND --help` prints. A user mistake prints one line",
        "`error: <file>: <problem>` and exits with status 2 ([the safety model](../concepts/safety.md)).",
        "",
    ]
    for path, command in walk(root):
        if len(path) > 1:
            lines.append(f"{'    ' * (len(path) - 2)}- [`{' '.join(path)}`](#{anchor(path)})")
    lines.append("")
    contexts = {}
    for path, command in walk(root):
        ctx = _context(path, command, contexts.get(path[:-1]))
        contexts[path] = ctx
        level = "#" * min(len(path) + 1, 4)
        lines += [f"{level} `{' '.join(path)}` {{#{anchor(path)}}}", ""]
        help_text = (command.help or "").split("\f")[0].strip()
        if help_text:
            lines += [help_text, ""]
        lines += ["```text", _usage(path, command), "```", ""]
        subs = getattr(command, "commands", None)
        if subs:
            lines += ["| command | what it does |", "| --- | --- |"]
            for name in sorted(subs):
                sub = subs[name]
                short = _md(sub.short_help or (sub.help or "").strip().split("\n\n")[0])
                lines.append(f"| [`{name}`](#{anchor(path + (name,))}) | {short} |")
            lines.append("")
        args = [p for p in command.params if p.param_type_name == "argument"]
        opts = [p for p in command.params if p.param_type_name == "option"]
        if args:
            lines += ["| argument | type | help |", "| --- | --- | --- |"]
            for p in args:
                text, default = _help_and_default(p, ctx)
                many = " (one or more)" if getattr(p, "nargs", 1) == -1 else ""
                need = "" if p.required else " (optional)"
                lines.append(f"| `{p.name.upper()}` | {_type_name(p, ctx)}{many}{need} | {text} |")
            lines.append("")
        if opts:
            lines += ["| option | type | default | help |", "| --- | --- | --- | --- |"]
            for p in opts:
                names = ", ".join(f"`{o}`" for o in (*p.opts, *p.secondary_opts))
                text, default = _help_and_default(p, ctx)
                lines.append(f"| {names} | {_type_name(p, ctx)} | {default} | {text} |")
            lines += ["| `--help` | flag | | show the help and exit |", ""]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ JSON Schemas


def _resolve(schema: dict, node: dict) -> dict:
    ref = node.get("$ref")
    if ref:
        target = schema["$defs"][ref.rsplit("/", 1)[-1]]
        merged = dict(target)
        merged.update({k: v for k, v in node.items() if k != "$ref"})
        return merged
    return node


def _schema_type(schema: dict, node: dict) -> str:
    node = _resolve(schema, node)
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    if "anyOf" in node:
        return " \\| ".join(dict.fromkeys(_schema_type(schema, n) for n in node["anyOf"]))
    kind = node.get("type", "any")
    if kind == "array":
        item = _schema_type(schema, node.get("items", {})) if node.get("items") else "any"
        return f"list of {item}"
    if kind == "object" and "properties" in node:
        return "mapping"
    if isinstance(kind, list):
        return " \\| ".join(kind)
    bounds = []
    for key, sym in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if key in node:
            bounds.append(f"{sym} {node[key]}")
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def _object_of(schema: dict, node: dict) -> dict | None:
    """The object schema a key holds (directly, or as one branch of an anyOf), if it has properties."""
    node = _resolve(schema, node)
    if "properties" in node:
        return node
    for branch in node.get("anyOf", []):
        branch = _resolve(schema, branch)
        if "properties" in branch:
            return branch
        if branch.get("type") == "array" and branch.get("items"):
            inner = _object_of(schema, branch["items"])
            if inner is not None:
                return inner
    if node.get("type") == "array" and node.get("items"):
        return _object_of(schema, node["items"])
    return None


def _rows(schema: dict, obj: dict, prefix: str, rows: list, sections: list) -> None:
    required = set(obj.get("required", []))
    for key, node in obj.get("properties", {}).items():
        full = f"{prefix}{key}"
        res = _resolve(schema, node)
        default = node.get("default", res.get("default", ...))
        default_s = "required" if key in required else ("" if default is ... else f"`{json.dumps(default)}`")
        desc = _md(node.get("description") or res.get("description") or "")
        inner = _object_of(schema, node)
        if inner is not None and inner is not obj:
            desc = (desc + " " if desc else "") + f"Keys: [`{full}.*`](#{full.replace('.', '-')}-keys)."
        rows.append(f"| `{full}` {{#{full.replace('.', '-').replace('[]', '')}}} | {_schema_type(schema, node)} | {default_s} | {desc} |")
        if inner is not None and inner is not obj:
            sections.append((full, inner))


def schema_markdown(name: str, title: str, intro: str) -> str:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    lines = [f"# {title}", "", intro, "",
             f"Generated at build time from `src/terraseg/schemas/{name}.schema.json` (itself generated from the",
             "pydantic models; `python -m terraseg.schemas` rewrites it and a test checks it is current).", ""]
    if schema.get("description"):
        lines += [_md(schema["description"]), ""]
    pending = [("", schema)]
    seen = set()
    while pending:
        prefix, obj = pending.pop(0)
        if (prefix, id(obj)) in seen:
            continue
        seen.add((prefix, id(obj)))
        rows: list[str] = []
        sections: list = []
        _rows(schema, obj, f"{prefix}." if prefix else "", rows, sections)
        heading = f"## `{prefix}` {{#{prefix.replace('.', '-')}-keys}}" if prefix else "## Top-level keys"
        lines += [heading, "", "| key | type | default | description |", "| --- | --- | --- | --- |", *rows, ""]
        pending.extend(sections)
    return "\n".join(lines) + "\n"


SCHEMA_PAGES = {
    "reference/config.md": ("training", "Training config keys",
                            "Every key of a `terraseg train` config YAML. Any key can also be set on the command line "
                            "as `section.key=value` ([Train a model](../howto/train.md#overrides)); `trainer` also "
                            "takes any other `lightning.Trainer` argument."),
    "reference/dataset.md": ("dataset", "Dataset YAML keys",
                             "Every key of a dataset description YAML ([Prepare a data set](../howto/prepare-data.md))."),
    "reference/bundle.md": ("bundle", "Bundle metadata keys",
                            "Every key of a bundle's `bundle.json` ([the bundle format](../concepts/bundle.md))."),
}

# ------------------------------------------------------------------------------------- Python API

# page -> (title, intro, [(module, members or None)]); members of lazy packages come from their tables
API_AREAS = {
    "terraseg": ("terraseg", "The top-level API: load a model by name or path on the fastest correct backend and "
                 "predict arrays and files.", "terraseg"),
    "predict": ("terraseg.predict", "Full-resolution tiled prediction on a backend you hand it.", "terraseg.predict"),
    "evaluate": ("terraseg.evaluate", "Full-resolution evaluation and the confusion-matrix metrics.", None),
    "bundle": ("terraseg.bundle", "Model bundles: safetensors weights + JSON metadata, never unpickled.", None),
    "export": ("terraseg.export", "ONNX export and int8 quantisation.", "terraseg.export"),
    "pretrained": ("terraseg.pretrained", "The built-in models shipped inside the package.", None),
    "data": ("terraseg.data", "The data toolkit: sources, dataset descriptions, inspect, convert, stats, split, "
             "chips, the sample generator and the training data set.", "terraseg.data"),
    "train": ("terraseg.train", "Training from a validated config.", None),
    "assess": ("terraseg.assess", "Accuracy assessment and area estimation (Olofsson et al. 2014).", "terraseg.assess"),
    "change": ("terraseg.change", "Change between two class maps.", "terraseg.change"),
}

STATIC_MODULES = {
    "evaluate": [("terraseg.evaluate", ["evaluate", "select_samples", "write_outputs"]),
                 ("terraseg.metrics", None), ("terraseg.plots", ["plot_confusion_matrix"])],
    "bundle": [("terraseg.bundle", None)],
    "pretrained": [("terraseg.pretrained", None)],
    "train": [("terraseg.train.run", ["train", "train_sample", "TrainResult"]),
              ("terraseg.train.config", ["load_config", "default_config"])],
}


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
        return True
    except Exception as exc:  # noqa: BLE001 - reported, and --strict fails on the warning
        log.warning("API reference: %s is not importable (%s); left out", module, exc)
        return False


def api_modules(area: str) -> list[tuple[str, list[str] | None]] | None:
    title, _, lazy = API_AREAS[area]
    if not _importable(title):
        return None
    if area in STATIC_MODULES:
        return STATIC_MODULES[area]
    pkg = importlib.import_module(lazy)
    table = getattr(pkg, "_EXPORTS", None) or getattr(pkg, "_LAZY", None) or {}
    by_module: dict[str, list[str]] = {}
    for name, where in table.items():
        module = where if where.startswith("terraseg") else f"{lazy}.{where}"
        by_module.setdefault(module, []).append(name)
    out = [(m, sorted(names)) for m, names in by_module.items()]
    if area == "terraseg":
        out.append(("terraseg.errors", ["TerrasegError", "DataError", "ConfigError", "ModelError"]))
    if area == "predict":
        out.append(("terraseg.predict.ground", ["pixel_areas", "GroundArea"]))
        out.append(("terraseg.predict.onnx_backend", ["read_onnx_meta"]))
    return out


def api_markdown(area: str, modules) -> str:
    title, intro, _ = API_AREAS[area]
    lines = [f"# `{title}`", "", intro, "",
             "Generated at build time from the docstrings (mkdocstrings). The names are importable from "
             f"`{title}` itself; each section names the module that defines them.", ""]
    for module, members in modules:
        lines += [f"::: {module}", "    options:", "      show_root_heading: true",
                  "      show_root_full_path: true", "      heading_level: 2"]
        if members:
            lines.append("      members:")
            lines += [f"        - {m}" for m in members]
        lines.append("")
    return "\n".join(lines) + "\n"


_API_PAGES: dict[str, str] = {}


def on_config(config):
    """Fill the nav's "Python API" entry with the areas importable now."""
    _API_PAGES.clear()
    for area in API_AREAS:
        modules = api_modules(area)
        if modules is not None:
            _API_PAGES[f"reference/api/{area}.md"] = api_markdown(area, modules)

    def fill(items):
        for item in items:
            if isinstance(item, dict):
                for key, value in item.items():
                    if key == "Python API":
                        item[key] = [{API_AREAS[Path(p).stem][0]: p} for p in _API_PAGES]
                    elif isinstance(value, list):
                        fill(value)

    fill(config["nav"] or [])
    return config


def on_files(files, config):
    generated = {"reference/cli.md": cli_markdown()}
    for page, (name, title, intro) in SCHEMA_PAGES.items():
        generated[page] = schema_markdown(name, title, intro)
    generated.update(_API_PAGES)
    for src_uri, content in generated.items():
        files.append(File.generated(config, src_uri, content=content))
    return files
