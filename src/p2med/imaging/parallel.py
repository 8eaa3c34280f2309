"""Run one function over many tasks in worker processes, surviving workers that die.

Workers are forked (nothing is re-imported) and run BLAS single-threaded: the parallelism is over tasks (exams),
not inside a matrix product. Forked workers inherit that limit from this process, which holds it only while
they are forked (setting it in each worker costs ~15 ms of start-up and shutdown a worker); spawned workers set
it themselves. A native decoder that crashes on a damaged file kills its worker; the executor then fails the
tasks in flight, which are retried one at a time in fresh single-worker pools, so only the task that kills its
worker again is given up (``on_crash(task)`` says what to yield for it). ``workers <= 1`` runs in this process.
It knows nothing about DICOM. Example::

    for result in run_tasks(work, tasks, workers=2, on_crash=lambda t: (t[0], None, [])):
        ...
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _single_threaded_blas() -> None:
    """Worker initializer (spawned workers): one BLAS thread per worker process."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1)


@contextlib.contextmanager
def _forked_single_threaded():
    """One BLAS thread in this process while forked workers start (they keep it); restored afterwards."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(1):
        yield


def _executor(workers: int) -> ProcessPoolExecutor:
    if os.name == "posix":
        return ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"))
    return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_single_threaded_blas)


def _submit(ex: ProcessPoolExecutor, fn: Callable[[T], R], tasks: list[T]) -> dict:
    """Submit every task; a forking executor starts all its workers at the first submit, inside the BLAS limit."""
    with _forked_single_threaded():
        return {ex.submit(fn, t): t for t in tasks}


def run_tasks(fn: Callable[[T], R], tasks: Iterable[T], workers: int,
              on_crash: Callable[[T], R]) -> Iterator[R]:
    """Yield ``fn(task)`` for every task, in completion order (``on_crash(task)`` for a task that kills its
    worker twice: once among others, once alone)."""
    tasks = list(tasks)
    if workers <= 1 or len(tasks) <= 1:
        yield from map(fn, tasks)
        return
    retry: list[T] = []
    gc.freeze()                  # the forked workers then do not copy the parent's pages when they collect
    try:
        with _executor(min(workers, len(tasks))) as ex:
            futures = _submit(ex, fn, tasks)
            for fut in as_completed(futures):
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    retry.append(futures[fut])
                    continue
                yield result
    finally:
        gc.unfreeze()
    for task in retry:                                   # alone now: a crash names its own task
        with _executor(1) as ex:
            try:
                yield next(iter(_submit(ex, fn, [task]))).result()
            except BrokenProcessPool:
                yield on_crash(task)
