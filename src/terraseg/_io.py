"""Small file helpers shared by every stage: atomic writes so no partial output is ever left behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file keeps the final suffix (so writers that look at the extension, such as
    rasterio or Pillow, pick the right format). On any exception the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else "".join(path.suffixes[-1:])
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.stem), suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get the usual permissions
    try:
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, path)
        _fsync(path.parent)  # the rename itself reaches the disk
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(exc, Exception) and getattr(exc, "filename", None) is None:
            # writers given a file object name no file, and GDAL says only "Write failed": name the
            # output and, where the file system tells, the reason
            code = getattr(exc, "errno", None) or _write_failure_reason(path.parent)
            if code is not None:
                raise OSError(code, os.strerror(code), str(path)) from exc
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _write_failure_reason(folder: Path) -> int | None:
    """errno explaining why writing into ``folder`` failed, when the file system shows it (full, read-only)."""
    import errno

    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return errno.EROFS
    if st.f_bfree * st.f_frsize < 1 << 20:  # under 1 MiB left (blocks free even to root)
        return errno.ENOSPC
    return None


def _fsync(path: Path) -> None:
    """Flush ``path`` to the disk, so a crash after the rename cannot leave an empty file under the final name."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # a folder on a platform that cannot open it, or a file the writer removed: nothing to do
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (e.g. certain network mounts) cannot fsync; the rename is still atomic
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------------
# temporaries: ``.<name>.<pid>-<8 random characters>.part[.suffix]`` files (atomic_path, checkpoints)
# and ``.<name>.<pid>-<8 random characters>.partial`` folders (all-or-nothing output folders)

_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?:(?P<pid>\d+)-)?[a-z0-9_]{8}\.(?:part|partial)(?:\..*)?$")


def temp_prefix(name: str) -> str:
    """Prefix for a temporary beside the output ``name``: hidden, and carrying this process id so that
    a later run can tell the temporaries of a killed run (stale) from those of a run still going."""
    return f".{name}.{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else (or cannot be asked): leave its files alone
    return True


def clean_stale_temporaries(folder: str | Path, names: list[str] | None = None) -> list[Path]:
    """Remove the temporaries that killed runs left in ``folder`` (only terraseg's naming pattern).

    ``names`` restricts the cleaning to temporaries of those outputs (e.g. the output folder's name).
    Temporaries of a process that is still running are kept. Returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        m = _TEMP_NAME.match(entry.name)
        if m is None or (names is not None and m["name"] not in names):
            continue
        if m["pid"] is not None and (int(m["pid"]) == os.getpid() or _alive(int(m["pid"]))):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


# --------------------------------------------------------------------------------------------------
# output checks, before any work starts


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB" if n < 1e9 else f"{n / 1e9:,.2f} GB"


def check_output(path: str | Path, kind: str = "file", need_bytes: int | None = None, clean: bool = True) -> Path:
    """Check that ``path`` can be written as a ``kind`` ("file" or "folder") before any work starts.

    Refuses (with :class:`~terraseg.errors.OutputError` naming the path): a folder where a file is
    expected or the reverse, a parent that is a file, a location on a read-only file system or
    without write permission, and less free space than ``need_bytes`` (when it can be estimated).
    Creates nothing. With ``clean``, removes the temporaries that a killed earlier run left for this
    output (beside it, and inside it for a folder).
    """
    from terraseg.errors import OutputError

    path = Path(path)
    if kind not in ("file", "folder"):
        raise ValueError(f"kind must be 'file' or 'folder', not {kind!r}")
    if path.exists():
        if kind == "file" and path.is_dir():
            raise OutputError("is a folder, but a file is to be written here", path)
        if kind == "folder" and not path.is_dir():
            raise OutputError("is a file, but an output folder is to be written here", path)
    base = _existing_ancestor(path if kind == "folder" and path.exists() else path.parent)
    if not base.is_dir():
        raise OutputError(f"cannot create {path.name!r} inside it: it is a file, not a folder", base)
    try:  # a real write says more than os.access (read-only mounts, ACLs, root on a read-only file system)
        fd, probe = tempfile.mkstemp(prefix=temp_prefix("write-check"), suffix=".part", dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write here ({describe_os_error(exc, with_path=False)})", base) from None
    if need_bytes:
        free = shutil.disk_usage(base).free
        if free < need_bytes:
            raise OutputError(f"not enough free space: about {_mb(need_bytes)} needed, {_mb(free)} free", base)
    if clean:
        clean_stale_temporaries(path.parent, [path.name, path.stem])
        if kind == "folder":
            clean_stale_temporaries(path)
    return path


def check_apart_from_inputs(out_dir: str | Path, inputs, recursive: bool = False, option: str = "--out") -> None:
    """Refuse an output folder that is an input folder (outputs would be mixed with, and on the next run
    read as, inputs), or lies inside one that is read recursively. Remote inputs are skipped."""
    from terraseg.errors import OutputError

    out = Path(out_dir).expanduser().resolve()
    for item in inputs:
        text = str(item)
        if text.startswith(("http://", "https://", "ftp://", "s3://", "gs://", "/vsi")):
            continue
        folder = Path(text).expanduser()
        if not folder.is_dir():
            continue
        folder = folder.resolve()
        if out == folder:
            raise OutputError(f"{option} is the input folder {text}; write the outputs to another folder", out_dir)
        if recursive and folder in out.parents:
            raise OutputError(f"{option} is inside the input folder {text}, which --recursive reads; write the "
                              "outputs outside it", out_dir)


@contextlib.contextmanager
def removed_on_failure(path: str | Path) -> Iterator[Path]:
    """Remove ``path`` (file or folder) if the block fails and ``path`` did not exist before it:
    a failed command leaves nothing it created."""
    path = Path(path)
    existed = path.exists()
    try:
        yield path
    except BaseException:
        if not existed:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        raise


def describe_os_error(exc: OSError, with_path: bool = True) -> str:
    """``"PATH: problem"`` in plain words for an OS error (no errno numbers, no Python repr)."""
    import errno

    words = {
        errno.ENOSPC: "no space left on the device",
        errno.EROFS: "read-only file system",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.EISDIR: "is a folder, not a file",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.ENOENT: "no such file or folder",
        errno.EEXIST: "already exists",
        errno.EDQUOT: "disk quota exceeded",
        errno.ENAMETOOLONG: "file name too long",
    }
    problem = words.get(exc.errno) or (exc.strerror or str(exc) or type(exc).__name__).rstrip(".").lower()
    path = exc.filename
    if with_path and path is not None:
        return f"{os.fsdecode(path)}: {problem}"
    return problem
