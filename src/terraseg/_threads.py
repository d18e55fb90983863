"""How many threads prediction uses: one per physical core this process may run on.

Hyper-threads share a core's vector units, so a convolution runs no faster on two of them than on
one, and threads beyond the cores the process is allowed (``taskset``, container CPU sets) only
wait for each other. Both backends (torch and ONNX Runtime) take their intra-op thread count from
here, and run one operator at a time (inter-op 1), so nothing is oversubscribed. The prediction
engine reads tiles in the calling thread, between model calls, so no loader thread competes.

``TERRASEG_THREADS`` overrides the count (e.g. to leave cores to other work).
"""

from __future__ import annotations

import os

__all__ = ["inference_threads"]


def _allowed_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _physical_cores() -> int | None:
    try:
        import psutil

        return psutil.cpu_count(logical=False)
    except Exception:  # psutil missing or unable to tell (some containers)
        return None


def inference_threads() -> int:
    """Intra-op threads for a model call: ``TERRASEG_THREADS``, else the physical cores (at most the
    CPUs this process may use), at least 1."""
    env = os.environ.get("TERRASEG_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            from terraseg.errors import ConfigError

            raise ConfigError(f"TERRASEG_THREADS must be a whole number, not {env!r}") from None
    allowed = _allowed_cpus()
    physical = _physical_cores()
    if physical:
        # On a machine with 2 threads per core, the allowed CPUs hold about half as many cores.
        per_core = max(1, (os.cpu_count() or allowed) // physical)
        return max(1, min(physical, -(-allowed // per_core)))
    return max(1, allowed)
