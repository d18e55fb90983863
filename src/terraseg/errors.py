"""Errors raised for user mistakes (bad input files, bad configs, bad model files).

Every ``TerrasegError`` message is one sentence that names the file or key and the problem. The CLI
prints it on one line (no traceback) and exits with status 2; the GUI shows it in a dialog.
"""

from __future__ import annotations

from pathlib import Path


class TerrasegError(Exception):
    """A user-facing error: bad input, bad configuration, bad model file."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = str(path) if path is not None else None
        super().__init__(one_line(f"{path}: {message}" if path is not None else str(message)))


def one_line(text: str) -> str:
    """``text`` with line breaks, tabs and terminal control codes written as escapes (``\\n``,
    ``\\x1b``): a user's key, class name or file name must not break the one error line or drive the
    terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class DataError(TerrasegError):
    """An image, mask or data set on disk is missing, unreadable or inconsistent."""


class ConfigError(TerrasegError):
    """A YAML config or dataset description is invalid (names the key and what is wrong)."""


class ModelError(TerrasegError):
    """A model name, option or model file is invalid."""


class OutputError(TerrasegError):
    """An output location cannot be written: read-only, not a folder, not a file, or too little free space."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its class name when it has none), for one-line errors."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]
