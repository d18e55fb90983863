"""Built-in models: trained models shipped inside the package, usable by name with no network.

A built-in model is a bundle folder under ``terraseg/pretrained/<name>/`` (``bundle.json`` +
``model.safetensors``, as :mod:`terraseg.bundle` writes them) with two more files beside it:
``model.int8.onnx`` (the same model quantised to int8, carrying the Deepness plugin's metadata keys,
for QGIS users and ``--precision int8``) and ``card.md`` (its model card: data, licence, scores,
limits, the command that reproduces it).

Wherever terraseg takes a model (``terraseg predict``, ``evaluate``, ``export``, ``gui --model``,
``model.init_from`` in a training config, :func:`terraseg.load_model`), the reference is turned into
a path by :func:`resolve_model`: an existing path always wins, then a built-in name. Nothing here
imports torch.
"""

from __future__ import annotations

from pathlib import Path

from terraseg.errors import ModelError

__all__ = ["names", "folder", "resolve_model", "builtin_name", "card_text", "int8_onnx", "sample_scene",
           "INT8_NAME", "CARD_NAME"]

PACKAGE_DIR = Path(__file__).resolve().parent
INT8_NAME = "model.int8.onnx"
CARD_NAME = "card.md"
SAMPLES_DIR = PACKAGE_DIR / "samples"
#: The shipped real scene (CC0, Dubai, held out of the built-in model's training) and its mask.
SAMPLE_IMAGE = "dubai-scene.jpg"
SAMPLE_MASK = "dubai-scene-mask.png"


def names() -> list[str]:
    """The built-in model names, sorted (the folders of this package that hold a bundle)."""
    return sorted(p.name for p in PACKAGE_DIR.iterdir() if (p / "bundle.json").is_file())


def folder(name: str) -> Path:
    """The bundle folder of the built-in model ``name``; one error line listing the names otherwise."""
    if name not in names():
        raise ModelError(f"no built-in model called {name!r}; built-in models: {', '.join(names()) or 'none'}")
    return PACKAGE_DIR / name


def builtin_name(ref) -> str | None:
    """The built-in name ``ref`` refers to, or None (a path that exists is never a name)."""
    if not isinstance(ref, (str, Path)) or Path(ref).exists():
        return None
    text = str(ref)
    return text if text in names() else None


def resolve_model(ref):
    """A model reference as a path: an existing path as it is, a built-in name as its packaged bundle
    folder. Anything else that is not a path (a loaded Bundle, a backend) is returned unchanged.

    A string or path that is neither gives one :class:`ModelError` naming it and listing the built-in
    models, so a typo in a name and a wrong path read the same.
    """
    if not isinstance(ref, (str, Path)):
        return ref
    path = Path(ref).expanduser()
    if path.exists():
        return path
    name = builtin_name(str(ref))
    if name is not None:
        return PACKAGE_DIR / name
    raise ModelError("model not found: expected a bundle folder, an exported .onnx file or a built-in model "
                     f"({', '.join(names()) or 'none installed'}; see `terraseg models pretrained`)", ref)


def card_text(name: str) -> str:
    """The model card (Markdown) of a built-in model."""
    card = folder(name) / CARD_NAME
    return card.read_text(encoding="utf-8") if card.is_file() else f"# {name}\n\n(no model card shipped)\n"


def int8_onnx(name_or_folder) -> Path | None:
    """The shipped int8 ONNX file of a built-in model (a name or its folder), or None."""
    path = Path(name_or_folder)
    if not path.is_dir():
        path = folder(str(name_or_folder))
    candidate = path / INT8_NAME
    return candidate if candidate.is_file() and path.parent == PACKAGE_DIR else None


def sample_scene() -> tuple[Path, Path]:
    """``(image, mask)`` of the shipped CC0 Dubai scene (a JPEG and its RGB colour mask)."""
    image, mask = SAMPLES_DIR / SAMPLE_IMAGE, SAMPLES_DIR / SAMPLE_MASK
    if not image.is_file() or not mask.is_file():
        raise ModelError("the sample scene is not installed with this copy of terraseg", SAMPLES_DIR)
    return image, mask
