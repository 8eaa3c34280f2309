"""Select the six-task benchmark (SPEC section 7) before any training stage, by patient.

X-ray: ``xray_mrc_patients`` visits with several X-ray exams, every exam of each a sample with its earlier
exams as priors, plus ``xray_single`` first exams of other visits (unique time points, no priors). CT: exams
with their earlier exams of the visit as priors. Records: one per sample. Within a task, samples are drawn
round-robin over categories, rarest first, so disease coverage is maximised. Every patient with a benchmark
sample is excluded from every training stage, so samples come only from a seeded draw of ``max_patient_share``
of the patients (a small hospital keeps most of its patients for training). Fewer data than asked gives a
smaller benchmark and a warning.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from .config import BenchmarkConfig
from .items import Item

Candidate = tuple[str, str, list[Item]]   # (category, key, the turns of the sample: priors + evaluated)


def round_robin(cands: list[Candidate], n: int, rng: np.random.Generator, seen_patients: set | None = None
                ) -> list[list[Item]]:
    """Up to ``n`` candidates cycling over categories (rarest first); ``seen_patients`` limits one per patient."""
    by_cat: dict[str, list[Candidate]] = defaultdict(list)
    for c in sorted(cands, key=lambda c: c[1]):
        by_cat[c[0]].append(c)
    queues = {cat: [cs[i] for i in rng.permutation(len(cs))] for cat, cs in by_cat.items()}
    order = sorted(queues, key=lambda cat: (len(queues[cat]), cat))
    out: list[list[Item]] = []
    while len(out) < n and any(queues.values()):
        for cat in order:
            while queues[cat]:
                _, _, turns = queues[cat].pop(0)
                pid = turns[-1].patient_id
                if seen_patients is not None:
                    if pid in seen_patients:
                        continue
                    seen_patients.add(pid)
                out.append(turns)
                break
            if len(out) >= n:
                break
    return out


def select(groups: list[list[Item]], records: list[Item], cfg: BenchmarkConfig, seed: int
           ) -> tuple[list[list[Item]], list[str]]:
    """(benchmark samples as turn lists, warnings). ``groups`` are the radiology conversations (time order)."""
    rng = np.random.default_rng([seed, 7])
    samples: list[list[Item]] = []
    warnings: list[str] = []
    patients = sorted({g[0].patient_id for g in groups} | {r.patient_id for r in records})
    allowed = {patients[i] for i in rng.permutation(len(patients))[:math.ceil(cfg.max_patient_share * len(patients))]}
    groups = [g for g in groups if g[0].patient_id in allowed]
    records = [r for r in records if r.patient_id in allowed]

    def want(task: str, got: int, asked: int) -> None:
        if got < asked:
            warnings.append(f"benchmark {task}: {got} samples instead of {asked} (not enough data in "
                            f"{len(allowed)} of {len(patients)} patients, benchmark.max_patient_share "
                            f"{cfg.max_patient_share})")

    xr = [g for g in groups if g[0].task == "xray_report"]
    multi = [(g[-1].primary, g[-1].id, g) for g in xr if len(g) >= 2]
    mrc_groups = round_robin(multi, cfg.xray_mrc_patients, rng, seen_patients=set())
    want("xray_report (patients with several exams)", len(mrc_groups), cfg.xray_mrc_patients)
    mrc_patients = {g[0].patient_id for g in mrc_groups}
    for g in mrc_groups:
        samples += [g[:k + 1] for k in range(len(g))]
    singles = [(g[0].primary, g[0].id, g[:1]) for g in xr if g[0].patient_id not in mrc_patients]
    picked = round_robin(singles, cfg.xray_single, rng)
    want("xray_report (unique time points)", len(picked), cfg.xray_single)
    samples += picked
    ct = [(g[k].primary, g[k].id, g[:k + 1]) for g in groups if g[0].task == "ct_report" for k in range(len(g))]
    picked = round_robin(ct, cfg.ct_report, rng)
    want("ct_report", len(picked), cfg.ct_report)
    samples += picked
    for task in ("outpatient", "first_course", "attending_round", "chief_round"):
        cands = [(r.primary, r.id, [r]) for r in records if r.task == task]
        n = getattr(cfg, task)
        picked = round_robin(cands, n, rng)
        want(task, len(picked), n)
        samples += picked
    return samples, warnings
