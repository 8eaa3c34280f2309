"""The three training stages of SPEC section 3, as deterministic samplers over units (a unit is a radiology
conversation or a text record), each with a task and a primary category.

Stage 1 keeps every radiology conversation and every deduplicated outpatient record. Stage 2 balances task
types: radiology as stage 1, inpatient records of categories with more than 40 samples (per record level),
and outpatient records drawn round-robin over categories of 325-5,000 samples, at most 500 each, without
repetition, until they match the inpatient total. Stage 3 balances categories: X-ray up to 500 per category
of 100-2,000, all CT, outpatient up to 200 per category of 325-5,000, inpatient all of categories of 40-500.
Thresholds come scaled (``Thresholds.scaled``). Counts are by the unit's primary (first) category.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Callable

import numpy as np

INPATIENT = ("first_course", "attending_round", "chief_round")


@dataclass(frozen=True)
class Unit:
    key: str        # sample id
    task: str
    category: str   # primary category


def _by_category(units: list[Unit]) -> dict[str, list[Unit]]:
    out: dict[str, list[Unit]] = defaultdict(list)
    for u in sorted(units, key=lambda u: u.key):
        out[u.category].append(u)
    return out


def _shuffled(units: list[Unit], rng: np.random.Generator) -> list[Unit]:
    units = sorted(units, key=lambda u: u.key)
    return [units[i] for i in rng.permutation(len(units))]


def stage1(units: list[Unit]) -> list[Unit]:
    return [u for u in units if u.task in ("xray_report", "ct_report", "outpatient")]


def stage2(units: list[Unit], th: dict[str, int], seed: int) -> list[Unit]:
    rng = np.random.default_rng([seed, 2])
    out = [u for u in units if u.task in ("xray_report", "ct_report")]
    inpatient = []
    for task in INPATIENT:
        for cat, us in _by_category([u for u in units if u.task == task]).items():
            if len(us) >= th["stage2_inpatient_min"]:
                inpatient += us
    out += inpatient
    pools = {cat: _shuffled(us, rng) for cat, us in _by_category([u for u in units if u.task == "outpatient"]).items()
             if th["stage2_outpatient_min"] <= len(us) <= th["stage2_outpatient_max"]}
    target = len(inpatient)
    taken: Counter = Counter()
    picked: list[Unit] = []
    while len(picked) < target:
        progressed = False
        for cat in sorted(pools):
            if len(picked) >= target:
                break
            if taken[cat] < min(th["stage2_outpatient_cap"], len(pools[cat])):
                picked.append(pools[cat][taken[cat]])
                taken[cat] += 1
                progressed = True
        if not progressed:
            break
    return out + picked


def stage3(units: list[Unit], th: dict[str, int], seed: int) -> list[Unit]:
    rng = np.random.default_rng([seed, 3])
    out = [u for u in units if u.task == "ct_report"]

    def capped(task: str, lo: str, hi: str, cap: str | None) -> list[Unit]:
        res = []
        for cat, us in _by_category([u for u in units if u.task == task]).items():
            if th[lo] <= len(us) <= th[hi]:
                res += _shuffled(us, rng)[:th[cap]] if cap else us
        return res

    out += capped("xray_report", "stage3_xray_min", "stage3_xray_max", "stage3_xray_cap")
    out += capped("outpatient", "stage3_outpatient_min", "stage3_outpatient_max", "stage3_outpatient_cap")
    for task in INPATIENT:
        out += capped(task, "stage3_inpatient_min", "stage3_inpatient_max", None)
    return out


def counts(units: list[Unit]) -> dict[str, dict[str, int]]:
    """task -> category -> count (for the data card's before/after tables)."""
    out: dict[str, Counter] = defaultdict(Counter)
    for u in units:
        out[u.task][u.category] += 1
    return {t: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for t, c in sorted(out.items())}


STAGES: dict[str, Callable] = {"stage1": lambda u, th, s: stage1(u), "stage2": stage2, "stage3": stage3}
