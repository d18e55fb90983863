"""Connect to a Dask cluster, or start a local one; a one-line install hint when Dask is missing."""

from __future__ import annotations

import contextlib
from typing import Iterator

from terraseg.errors import ConfigError, first_line

INSTALL_HINT = "prediction on several workers needs Dask: pip install 'terraseg[distributed]'"


def require_distributed():
    """The ``distributed`` module, or a :class:`ConfigError` saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return distributed


@contextlib.contextmanager
def connect(workers: int | None = None, scheduler=None, dashboard: bool = False) -> Iterator:
    """Yield a ``distributed.Client``.

    ``scheduler``: a running client (used as is), or the address of a scheduler (``tcp://host:8786``);
    otherwise a ``LocalCluster`` of ``workers`` processes with one thread each (the model's own
    threads do the parallel work inside a process) is started and shut down afterwards.
    """
    distributed = require_distributed()
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    if scheduler:
        try:
            client = distributed.Client(str(scheduler), timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({first_line(exc)})") from None
        with client:
            yield client
        return
    if workers is None or int(workers) < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    import logging

    cluster = distributed.LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                                       # the scheduler's HTTP server starts even without a dashboard:
                                       # a free port, so that clusters side by side do not collide
                                       dashboard_address=":8787" if dashboard else ":0",
                                       silence_logs=logging.ERROR)  # no shutdown chatter among the results
    with cluster, distributed.Client(cluster) as client:
        yield client


def workers_per_host(client) -> dict[str, int]:
    """How many workers share each host (to split that host's cores between them)."""
    from distributed.comm import get_address_host

    counts: dict[str, int] = {}
    for address in client.nthreads():
        host = get_address_host(address)
        counts[host] = counts.get(host, 0) + 1
    return counts


def worker_count(client) -> int:
    """The number of worker threads of the cluster (at least 1)."""
    return max(1, sum(client.nthreads().values()))
