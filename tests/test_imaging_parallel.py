"""The worker pool survives a worker that dies (a native decoder crash) and names only the task that killed it."""

from __future__ import annotations

import os

import pytest

from p2med.imaging.parallel import run_tasks


def _square_or_die(task: int) -> int:
    if task == 3:
        os._exit(1)                       # what a segfaulting decoder looks like from the pool
    return task * task


def test_a_dying_worker_costs_only_its_own_task():
    got = sorted(run_tasks(_square_or_die, range(8), workers=2, on_crash=lambda t: -t))
    assert got == sorted([t * t for t in range(8) if t != 3] + [-3])


def test_one_worker_runs_in_process():
    assert list(run_tasks(lambda t: t + 1, [1, 2], workers=1, on_crash=lambda t: None)) == [2, 3]


def _blas_threads(_task: int) -> list[int]:
    from threadpoolctl import threadpool_info

    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_forked_workers_run_blas_single_threaded_and_the_parent_keeps_its_setting():
    pytest.importorskip("threadpoolctl")
    import numpy  # noqa: F401 - loads a BLAS

    before = _blas_threads(0)
    got = list(run_tasks(_blas_threads, range(4), workers=2, on_crash=lambda t: None))
    assert all(threads and set(threads) == {1} for threads in got)
    assert _blas_threads(0) == before
