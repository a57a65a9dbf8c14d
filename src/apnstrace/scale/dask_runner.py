"""The per-file tasks on a dask.distributed cluster (`--dask ADDRESS`, or `--dask local`)."""
from __future__ import annotations

import uuid
from collections.abc import Callable

from ..errors import InputError
from .partial import FilePartial, run_file
from .workers import gather_parts


def run_on_dask(args: list[tuple], address: str, workers: int,
                progress: Callable[[int], None] | None = None) -> list[FilePartial]:
    """Submit run_file for each file; gather the partials as they finish.

    "local" starts a LocalCluster of `workers` single-threaded processes on loopback (closed
    afterwards). Any other value is a scheduler address; its workers must be able to read the
    capture paths and write the spill folder (shared storage, docs/scale.md)."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InputError("--dask needs dask.distributed: pip install 'apnstrace[scale]'") from None
    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        # pure=False: a file is read again if it is submitted again (it may have grown).
        run = uuid.uuid4().hex[:8]            # two runs on one cluster never share a task key
        futures = [client.submit(run_file, *a, pure=False, key=f"apnstrace-{run}-file-{a[0]}") for a in args]
        return gather_parts(as_completed(futures), progress, release=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
