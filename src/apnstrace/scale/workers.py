"""Run the per-file work in parallel (local processes, or a Dask cluster) and merge it."""
from __future__ import annotations

import gc
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

from ..beside import cores_available
from ..errors import ApnstraceError
from ..options import FlowOptions, SequenceOptions
from ..site import Site
from .merge import NotMergeable, merge
from .partial import FilePartial, run_file

Progress = Callable[[int], None]


# `workers=0` (the default) below this much capture: one process. Measured (docs/scale.md): on
# 0.7-1.6 GB of rotated files the per-file and merge costs outweigh a second core; on 10 GB two
# workers need less CPU than one process.
AUTO_MIN_BYTES = 4 << 30


def auto_workers(paths: Sequence[Path]) -> int:
    """What `workers=0` means for these files: one per core for AUTO_MIN_BYTES or more, else one."""
    total = 0
    for path in paths:
        try:
            total += path.stat().st_size
        except OSError:
            pass
    return default_workers() if total >= AUTO_MIN_BYTES else 1


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def default_workers() -> int:
    """One worker per core this process may use."""
    return cores_available()


def analyze_parallel(paths: Sequence[Path], *, site: Site | None, options: FlowOptions,
                     sequence_options: SequenceOptions | None, sequences: bool, workers: int = 0,
                     dask: str | None = None, spill_dir: str | os.PathLike | None = None,
                     progress: Progress | None = None):
    """Files already in time order -> the same Result as pipeline.Session over all of them.

    `dask`: a scheduler address ("tcp://host:8786") or "local" (a LocalCluster of `workers`
    processes). `spill_dir`: where workers leave their packet columns for the merge; on a
    cluster it must be storage every worker and this process share (docs/scale.md).
    """
    own_spill = spill_dir is None
    root = Path(tempfile.mkdtemp(prefix="apnstrace-spill-", dir=None if own_spill else spill_dir))
    # Removed as soon as the merge is done reading it (beside the stages over all flows).
    removal = threading.Thread(target=shutil.rmtree, args=(root,), kwargs={"ignore_errors": True})
    try:
        args = [(i, str(p), options, site, sequence_options, sequences, str(root)) for i, p in enumerate(paths)]

        def finish(parts: list[FilePartial], pool=None, shards: int = 1):
            try:
                return merge(parts, options, site, sequence_options, sequences, pool, shards,
                             spill_done=removal.start)
            except NotMergeable as why:
                warnings.warn(f"{why}: read sequentially instead", stacklevel=2)
                return None

        if dask is not None:
            from .dask_runner import run_on_dask
            return finish(run_on_dask(args, dask, workers or default_workers(), progress))
        return _run_local(args, workers or default_workers(), progress, finish)
    finally:
        if removal.is_alive():
            removal.join()
        shutil.rmtree(root, ignore_errors=True)


def _run_local(args: list[tuple], workers: int, progress: Progress | None, finish: Callable):
    """The files on a pool of processes, then `finish(parts, pool, shards)`: the merge, which
    replays the keys crossing file boundaries on the same pool, a shard per process."""
    # fork where there is one: a script or notebook calling analyze() needs no __main__ guard.
    fork = "fork" in get_all_start_methods()
    if fork:
        _warm_up(args[0][1], args[0][2])
    context = get_context("fork" if fork else "spawn")
    processes = min(workers, len(args))
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        # The processes fork at the first submit. Frozen objects are left out of the children's
        # collections, which would otherwise touch (copy) every page of objects inherited from
        # here: the first file in each child took 1.4-3.0 s instead of 1.0-1.4 s.
        if fork:
            gc.freeze()
        try:
            # Largest files first: the last tasks are the short ones, and the processes finish
            # close together (the merge waits for the last).
            futures = [pool.submit(run_file, *a) for a in sorted(args, key=lambda a: -_size(a[1]))]
        finally:
            if fork:
                gc.unfreeze()
        parts = gather_parts(as_completed(futures), progress)
        return finish(parts, pool, processes)


def _warm_up(path: str, options: FlowOptions) -> None:
    """Load the compiled kernels once, from the first MiB of a file, before forking: each
    worker would load them again (about half a second each), and the merge needs them too.
    (The merge's stages need no warm-up of their own beside the workers: with the kernel cache
    filled, running a whole first chunk through every stage here cost the workers' cores
    0.3 CPU s and left the merge's stages as fast, 0.91-0.99 s either way.)"""
    from ..pipeline import Session
    from ..reader import iter_batches
    from ..stats import RunStats
    session = Session(options, stats=RunStats())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for raw in iter_batches(Path(path), session.stats, 1 << 20, options.max_gzip_ratio):
                session.add(raw)
                break
        except ApnstraceError:                 # a bad file is its worker's to report
            pass


def gather_parts(completed, progress: Progress | None, release: bool = False) -> list[FilePartial]:
    """Each file's partial as its task completes, with the bytes read so far on the progress
    bar; `release` frees a Dask future's result on the cluster once it is here."""
    parts, done = [], 0
    for future in completed:
        part = future.result()
        parts.append(part)
        done += part.size
        if progress is not None:
            progress(done)
        if release:
            future.release()
    return parts
