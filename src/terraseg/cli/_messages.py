"""One-line messages on stderr: ``error: ...`` and ``warning: ...``.

Python warnings (from numpy, rasterio, Lightning, ...) and terraseg's own log warnings are printed
as one ``warning:`` line each while the command runs; a warning that repeats (the same text up to
its numbers) is printed once and counted, and the count is reported when the command ends.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import warnings
from collections import Counter
from typing import Iterator

from rich.console import Console
from rich.text import Text

err_console = Console(stderr=True)

#: errors that come from the machine rather than from terraseg: shown as one line, exit status 2
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR,
                                errno.ENOENT, errno.EEXIST, errno.EDQUOT, errno.ENAMETOOLONG, errno.EIO})
MAX_LINE = 400  # characters of a warning line; the rest is cut (one readable line, never a page)


def one_line(text: str, limit: int | None = None) -> str:
    text = " ".join(str(text).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return text


def print_error(message: str) -> None:
    err_console.print(Text("error: ", style="bold red") + Text(one_line(message)), highlight=False, soft_wrap=True)


def print_warning(message: str) -> None:
    err_console.print(Text("warning: ", style="bold yellow") + Text(one_line(message, MAX_LINE)), highlight=False,
                      soft_wrap=True)


def environment_error(exc: BaseException) -> OSError | None:
    """The OS error (full disk, read-only file system, ...) behind ``exc``, following its causes."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


class WarningReporter:
    """Routes Python warnings and ``logging`` warnings to one-line ``warning:`` messages."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.first: dict[str, str] = {}

    @staticmethod
    def _key(message: str) -> str:
        return re.sub(r"\d+(\.\d+)?", "#", message)

    def report(self, message: str) -> None:
        message = one_line(message)
        key = self._key(message)
        self.counts[key] += 1
        if self.counts[key] == 1:
            self.first[key] = message
            print_warning(message)

    def summary(self) -> None:
        for key, n in self.counts.items():
            if n > 1:
                print_warning(f"{n - 1:,} more like: {one_line(self.first[key], 120)}")

    def _showwarning(self, message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message)
        if category is not UserWarning:  # e.g. "RuntimeWarning: invalid value encountered in divide"
            text = f"{category.__name__}: {text}"
        self.report(text)

    @contextlib.contextmanager
    def active(self) -> Iterator["WarningReporter"]:
        handler = _LogHandler(self)
        root = logging.getLogger()
        old_show = warnings.showwarning
        warnings.showwarning = self._showwarning
        root.addHandler(handler)
        try:
            yield self
        finally:
            warnings.showwarning = old_show
            root.removeHandler(handler)
            self.summary()


class _LogHandler(logging.Handler):
    """Log records of level WARNING and above (terraseg's, the libraries') as ``warning:`` lines."""

    def __init__(self, reporter: WarningReporter) -> None:
        super().__init__(level=logging.WARNING)
        self.reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.reporter.report(record.getMessage())
        except Exception:  # pragma: no cover - a message that cannot be formatted is not worth a crash
            self.handleError(record)
