"""The worker pool survives a worker that dies (a native decoder crash) and names only the task that killed it."""

from __future__ import annotations

import os

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
