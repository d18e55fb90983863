"""Shared plumbing of the schemas: strict pydantic models, one-line errors, YAML without duplicate keys.

Every model derives from ``Strict`` (unknown keys refused, no silent type coercion). ``validate``
turns pydantic's error list into one ``TerrasegError`` sentence naming the file and the key path
(``key 'classes[2].color': ...``), with "did you mean" for unknown keys. Rules that span several
keys raise ``KeyProblem(key, message)`` from a model validator: pydantic lets it through unchanged
and ``validate`` formats it the same way.
"""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema

from terraseg.errors import ConfigError, TerrasegError, first_line


class KeyProblem(Exception):
    """A cross-key rule broken at ``key`` (raised inside model validators, formatted by ``validate``)."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key, self.message = key, message


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# ------------------------------------------------------------------ value types
def _number(v: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` as a string: accept numeric strings for float keys."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


Float = Annotated[float, BeforeValidator(_number), Field(allow_inf_nan=False)]


#: Longest class name accepted (legends, QGIS styles, GDAL category names and reports show it whole).
MAX_CLASS_NAME = 64


def class_name_problem(name: Any) -> str | None:
    """What is wrong with a class name, or None: one line of printable text, 1 to
    :data:`MAX_CLASS_NAME` characters (no line breaks, tabs or terminal escape codes)."""
    if not isinstance(name, str):
        return f"class name must be a string, got {_show(name)}"
    if not name.strip():
        return f"class name {name!r} is empty"
    bad = next((ch for ch in name if not ch.isprintable()), None)
    if bad is not None:
        what = "a line break" if bad in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029" else \
            f"the control character {bad!r}"
        return f"class name {_show(name)} contains {what}; a class name is one line of printable text"
    if len(name) > MAX_CLASS_NAME:
        return f"class name {_show(name)} is {len(name)} characters long, over the limit of {MAX_CLASS_NAME}"
    return None


def _check_class_name(name: Any) -> Any:
    problem = class_name_problem(name) if isinstance(name, str) else None
    if problem:
        raise ValueError(problem)
    return name


#: A validated class name (pydantic field type); the one rule of :func:`class_name_problem`.
ClassName = Annotated[str, AfterValidator(_check_class_name)]


def printable_label(text: Any, limit: int = MAX_CLASS_NAME) -> str:
    """``text`` as one printable line of at most ``limit`` characters (for drawing legends)."""
    out = "".join(ch if ch.isprintable() else "\ufffd" for ch in str(text))
    return out if len(out) <= limit else out[:limit - 1] + "\u2026"


def choice(*names: str):
    """A lower-cased choice among ``names`` (``AdamW`` is ``adamw``)."""
    lit = typing.Literal[names]  # type: ignore[valid-type]
    return Annotated[lit, BeforeValidator(lambda v: v.lower().strip() if isinstance(v, str) else v)]


def one_or_many(item_schema: dict, what: str):
    """A list that may be written as one item (``images: a/*.png`` or ``images: [a/*.png, b/*.png]``)."""

    def wrap(v: Any) -> Any:
        if v is None:
            raise ValueError("missing; it is required")
        if isinstance(v, list):
            return v
        if isinstance(v, (str, int, float, dict)) and not isinstance(v, bool):
            return [v]
        raise ValueError(f"must be {what}")

    return BeforeValidator(wrap), WithJsonSchema({"anyOf": [item_schema, {"type": "array", "items": item_schema}]})


# ------------------------------------------------------------------ errors
_TYPE_WORDS = {
    "int": "an integer", "float": "a number", "bool": "true or false", "string": "a string", "list": "a list",
    "dict": "a mapping", "model": "a mapping", "finite_number": "a finite number",
}


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(err: dict, fields: list[str]) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    got = f", got {_show(value)}"
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        close = difflib.get_close_matches(key, fields, n=1)
        return f"unknown key (did you mean {close[0]!r}?)" if close else \
            f"unknown key (known keys: {', '.join(fields)})" if fields else "unknown key"
    if kind == "missing":
        return "missing; it is required"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"]))
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        close = difflib.get_close_matches(str(value).lower(), options, n=1) if isinstance(value, str) else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"must be one of {', '.join(options)}{got}{hint}"
    bounds = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"), "less_than": ("<", "lt"),
              "less_than_equal": ("<=", "le")}
    if kind in bounds:
        word, name = bounds[kind]
        bound = ctx[name]
        return f"must be {word} {bound:g}{got}" if isinstance(bound, float) else f"must be {word} {bound}{got}"
    if kind in ("too_short", "too_long"):
        n = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        return f"must have {'at least' if kind == 'too_short' else 'at most'} {n} item(s), got {ctx.get('actual_length')}"
    if kind == "finite_number":
        return f"must be a finite number{got}"
    stem = kind.split("_")[0]
    if stem in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[stem]}{got}"
    return f"{err['msg'][0].lower()}{err['msg'][1:]}{got}"


def _is_tag(part: Any) -> bool:
    # pydantic names union members in the location ('int', 'list[int]', 'LoggerSpec', 'function-after[...]')
    return isinstance(part, str) and (part[:1].isupper() or "[" in part or "-" in part
                                      or part in ("int", "str", "float", "bool", "none", "list", "dict"))


def _fields_at(model: type, loc: tuple) -> list[str]:
    """Known key names of the mapping that holds ``loc[-1]`` (for "did you mean")."""
    node: Any = model
    for part in loc[:-1]:
        node = _unwrap(node)
        if isinstance(part, str) and isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(part)
            node = field.annotation if field is not None else None
        elif isinstance(part, int):
            args = [a for a in typing.get_args(node) if a is not type(None)]
            node = args[0] if args else None
    node = _unwrap(node)
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def _unwrap(tp: Any) -> Any:
    """The model class inside ``Model | None``, ``list[Model]``, ``Annotated[...]``."""
    for _ in range(4):
        if isinstance(tp, type) and issubclass(tp, BaseModel) or typing.get_origin(tp) is list:
            return tp
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if models:
            return models[0]
        tp = args[0] if args else None
    return tp


def model_of(tp: Any) -> type[BaseModel] | None:
    """The model class inside ``Model``, ``Model | None``, ``list[Model]`` (else None)."""
    for _ in range(5):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if models:
            return models[0]
        if not args:
            return None
        tp = args[0]
    return None


def key_path(loc: Iterable) -> str:
    out = ""
    for part in loc:
        if _is_tag(part) or part == "[key]":
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _best(errors: list[dict]) -> dict:
    # Of the errors pydantic reports (one per union member), the deepest one that is not a plain
    # type mismatch is the one that names what the user got wrong.
    def rank(e):
        depth = len([p for p in e["loc"] if not _is_tag(p)])
        return (depth, e["type"] not in ("model_type", "dict_type", "list_type", "string_type", "model_attributes_type"))

    return max(errors, key=rank)


def validate(model: type[BaseModel], data: Any, path: str | Path | None = None,
             error: type[TerrasegError] = ConfigError, origin: Callable[[str], Any] | None = None) -> Any:
    """``model.model_validate(data)``; any problem becomes one ``error`` line naming ``path`` and the key.

    ``origin(key)`` may name another source for a key (e.g. the command-line override that set it).
    """
    def where(key: str):
        return origin(key) if origin is not None else path

    try:
        return model.model_validate(data)
    except KeyProblem as exc:
        raise error(f"key '{exc.key}': {exc.message}", where(exc.key)) from None
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        err = _best(errors) if errors else {"type": "x", "loc": (), "msg": str(exc)}
        loc = tuple(err["loc"])
        clean = tuple(p for p in loc if not _is_tag(p))
        msg = _message(err, _fields_at(model, clean))
        key = key_path(loc)
        if not key:
            raise error(msg, path) from None
        raise error(f"key '{key}': {msg}", where(key)) from None


# ------------------------------------------------------------------ nesting and size of JSON / YAML
#: Deepest nesting of lists/mappings any JSON or YAML file terraseg reads may have. Real files nest a
#: few levels; Python's parsers recurse once per level and end in a RecursionError near 1,000.
MAX_NESTING = 64
#: Most values a YAML file may expand to once its aliases are resolved (``&a [*b, *b, ...]`` chains
#: grow exponentially: nine lines can stand for a billion values that validation would walk).
MAX_YAML_VALUES = 1_000_000
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def nesting_problem(depth: int, what: str = "value") -> str:
    return f"{what} nests lists/mappings {depth} levels deep, deeper than the limit of {MAX_NESTING}"


def json_nesting(text: str | bytes) -> int:
    """How deep ``[``/``{`` nest in JSON text (outside strings), without parsing it (no recursion)."""
    import numpy as np

    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if b"[" not in data and b"{" not in data:
        return 0
    codes = np.frombuffer(_JSON_STRING.sub(b'""', data), dtype=np.uint8)
    step = (codes == ord("[")).astype(np.int64) + (codes == ord("{"))
    step -= (codes == ord("]")).astype(np.int64) + (codes == ord("}"))
    return int(np.cumsum(step).max(initial=0))


def parse_json(text: str | bytes, path: str | Path | None = None, error: type[TerrasegError] = ConfigError,
               what: str = "JSON", invalid: str | None = None) -> Any:
    """``json.loads`` for user files: invalid JSON (``invalid``: the start of that message) or nesting
    deeper than :data:`MAX_NESTING` is one ``error`` naming ``path`` (checked before parsing, so no
    RecursionError or hang)."""
    import json

    depth = json_nesting(text)
    if depth > MAX_NESTING:
        raise error(nesting_problem(depth, what), path)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8 in bytes
        raise error(f"{invalid or f'not valid {what}'} ({first_line(exc, 120)})", path) from None


def _check_yaml_shape(text: str, path) -> None:
    """Refuse YAML nested deeper than :data:`MAX_NESTING` or expanding (aliases) to more than
    :data:`MAX_YAML_VALUES` values, from the event stream (PyYAML's composer recurses per level)."""
    import yaml

    sizes: dict[str, int] = {}  # anchor -> values it expands to
    stack: list[list] = []  # open collections: [anchor, values so far]
    total = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append([event.anchor, 1])
            if len(stack) > MAX_NESTING:
                line = event.start_mark.line + 1
                raise ConfigError(f"YAML nests lists/mappings more than {MAX_NESTING} levels deep (line {line})", path)
            continue
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, size = stack.pop()
        elif isinstance(event, yaml.ScalarEvent):
            anchor, size = event.anchor, 1
        elif isinstance(event, yaml.AliasEvent):
            anchor, size = None, sizes.get(event.anchor, 1)
        else:
            continue
        if anchor is not None:
            sizes[anchor] = size
        if stack:
            stack[-1][1] += size
        else:
            total += size
        if total + sum(s for _, s in stack) > MAX_YAML_VALUES:
            line = event.start_mark.line + 1
            raise ConfigError(f"YAML expands to more than {MAX_YAML_VALUES:,} values through its aliases "
                              f"(line {line}); write the values out instead", path)


# ------------------------------------------------------------------ YAML
def parse_yaml(text: str, path: str | Path | None = None) -> Any:
    """``yaml.safe_load`` that refuses a key given twice in one mapping (one line with file, key, line),
    nesting deeper than :data:`MAX_NESTING` and alias bombs."""
    import yaml

    loader = None
    try:
        _check_yaml_shape(text, path)
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_duplicates(node, "", path)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is None and isinstance(exc, yaml.reader.ReaderError):  # a character the YAML reader refuses
            code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
            where, problem = f" at character {exc.position}", f"character U+{code:04X} is not allowed in YAML"
        else:
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or first_line(exc)
        raise ConfigError(f"invalid YAML{where}: {problem}", path) from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_duplicates(node, where: str, path) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            name = f"{where}.{key}" if where else str(key)
            if key is not None and key != "<<":
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise ConfigError(f"duplicate key '{name}' at line {line} (first given at line {seen[key]}); "
                                      "keep one of them", path)
                seen[key] = line
            _check_duplicates(value_node, name, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicates(item, f"{where}[{i}]", path)


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """Read a YAML file (``what`` names it in the not-found message)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found", path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("not a text file", path) from None
    except OSError as exc:
        raise ConfigError(f"unreadable ({exc.strerror or exc})", path) from None
    return parse_yaml(text, path)
