"""The outpatient corpus ``bench/dedup.py`` deduplicates: synthetic-hospital records at any size, cached.

Planning a whole patient costs about 1 ms, so the corpus recombines instead: a few thousand patients are
planned once (``p2med.synth.hospital._Planner``) and their outpatient visits give *contexts* (disease, age,
side and the visit's imaging findings text) and identities; each corpus record draws a context and an
identity and samples a fresh case from them with the hospital's own record writer (``Case.sample``,
``Case.outpatient``, ``insert_phi``), so the text is what ``p2med synth`` writes, with its natural
near-duplicates (the same templates, different values). Then ``dup_share`` of the records get a planted copy
at Jaccard 0.85-1.0 and ``neg_share`` a hard negative at 0.6-0.84 (``p2med.synth.near_dups.mutate``); the
planted rows replace the last base records so the corpus holds exactly ``n`` records.

Record i depends only on (seed, i): the file is identical whatever the number of workers. Files go to
``$P2MED_BENCH_CACHE`` (default: the system temp folder), never into the repository:
``corpus-<n>-<seed>.tsv`` (``id<TAB>text`` per line, the text = the outpatient sections concatenated) and
``corpus-<n>-<seed>.truth.jsonl`` (``{"original", "copy", "kind", "jaccard"}`` per planted pair).
Example: ``path, truth = corpus(50_000, seed=1)``.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import os
import tempfile
from pathlib import Path

import numpy as np

from p2med.synth.config import SynthConfig
from p2med.synth.hospital import OUTPATIENT_KEYS, _Planner
from p2med.synth.near_dups import mutate, record_text
from p2med.synth.records import Case, insert_phi

PLANNED_PATIENTS = 3000


def cache_dir() -> Path:
    root = Path(os.environ.get("P2MED_BENCH_CACHE") or Path(tempfile.gettempdir()) / "p2med-bench-dedup")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _contexts(seed: int) -> tuple[SynthConfig, list[tuple], list]:
    """(config, outpatient visit contexts, identities) from PLANNED_PATIENTS planned patients."""
    cfg = SynthConfig(patients=PLANNED_PATIENTS, seed=seed)
    planner = _Planner(cfg)
    contexts, identities = [], []
    for i in range(PLANNED_PATIENTS):
        plan = planner.patient(i)
        identities.append(plan.identity)
        exams = {e.visit_id: e for e in reversed(plan.exams)}          # first exam of each visit
        diseases = {lab["record_id"][2:-1]: lab["diseases"][0] for lab in plan.labels}
        for k, visit in enumerate(plan.visits):
            if visit["kind"] != "outpatient":
                continue
            start = dt.date.fromisoformat(visit["start_time"][:10])
            exam = exams.get(visit["visit_id"])
            side = ("左" if exam.findings[0].side == "left" else "右") if exam and exam.findings else None
            contexts.append((diseases[f"{plan.patient_id}{k:02d}"], (start - plan.identity.birth_date).days,
                             start, side, exam.findings_text if exam else None))
    return cfg, contexts, identities


def _record(args: tuple) -> list[tuple[str, str, dict | None]]:
    """Base record i and, if it is chosen, its planted copy: [(id, text, truth row or None)]."""
    i, seed, kind = args
    cfg, contexts, identities = _STATE
    from p2med.synth.diseases import DISEASES
    rng = np.random.default_rng([seed, i, 7])
    disease, age_days, start, side, xr_text = contexts[int(rng.integers(len(contexts)))]
    identity = identities[int(rng.integers(len(identities)))]
    side = side or ("左" if rng.random() < 0.5 else "右")
    age_days += int(rng.integers(-60, 61)) if age_days > 90 else 0
    case = Case.sample(rng, DISEASES[disease], identity, age_days, start, side, xr_text, cfg.secondary_rate)
    sections = case.outpatient(rng)
    insert_phi(rng, sections, identity, False, cfg.text_phi_rate, start)
    rid = f"MZ{i:07d}"
    out = [(rid, record_text(sections, OUTPATIENT_KEYS), None)]
    if kind:
        band = (0.85, 1.0) if kind == "duplicate" else (0.6, 0.84)
        made = mutate(rng, sections, OUTPATIENT_KEYS, band)
        if made is not None:
            copy, j = made
            cid = rid + ("D" if kind == "duplicate" else "N")
            out.append((cid, record_text(copy, OUTPATIENT_KEYS),
                        {"original": rid, "copy": cid, "kind": kind, "jaccard": round(j, 6)}))
    return out


_STATE: tuple = ()


def _init(seed: int) -> None:
    global _STATE
    _STATE = _contexts(seed)


def corpus(n: int, seed: int = 1, dup_share: float = 0.03, neg_share: float = 0.03, workers: int = 2,
           progress: bool = True) -> tuple[Path, Path]:
    """Build (or reuse) the cached corpus of exactly ``n`` records; returns (tsv, truth) paths."""
    root = cache_dir()
    tsv, truth = root / f"corpus-{n}-{seed}.tsv", root / f"corpus-{n}-{seed}.truth.jsonl"
    if tsv.exists() and truth.exists():
        return tsv, truth
    rng = np.random.default_rng([seed, 0xC0])
    n_planted = int(round(n * dup_share)) + int(round(n * neg_share))
    n_base = n - n_planted
    chosen = rng.choice(n_base, size=n_planted, replace=False)
    kinds: dict[int, str] = {int(c): ("duplicate" if k < round(n * dup_share) else "hard_negative")
                             for k, c in enumerate(chosen)}
    jobs = [(i, seed, kinds.get(i)) for i in range(n_base)]
    rows: list[tuple[str, str]] = []
    planted: list[dict] = []
    from tqdm import tqdm
    with mp.get_context("fork").Pool(workers, initializer=_init, initargs=(seed,)) as pool:
        for out in tqdm(pool.imap(_record, jobs, chunksize=256), total=n_base, disable=not progress,
                        desc=f"corpus {n:,}", mininterval=2):
            for rid, text, row in out:
                rows.append((rid, text))
                if row:
                    planted.append(row)
    rows = rows[:n]
    kept = {rid for rid, _ in rows}
    base = n_base
    while len(rows) < n:                                        # a mutation that failed leaves a gap
        rows.extend(rid_text for out in [_fill(base, seed)] for rid_text in out)
        base += 1
    planted = [p for p in planted if p["copy"] in kept]
    tmp = tsv.with_suffix(".partial")
    with open(tmp, "w", encoding="utf-8") as fh:
        for rid, text in rows:
            if "\t" in text or "\n" in text:
                raise ValueError(f"corpus record {rid} holds a tab or newline")
            fh.write(f"{rid}\t{text}\n")
    with open(truth, "w", encoding="utf-8") as fh:
        for p in planted:
            fh.write(json.dumps(p, ensure_ascii=False) + "\n")
    os.replace(tmp, tsv)
    return tsv, truth


def _fill(i: int, seed: int) -> list[tuple[str, str]]:
    if not _STATE:
        _init(seed)
    return [(rid, text) for rid, text, _ in _record((i, seed, None))]


def read_corpus(path: Path):
    """Yield (id, text) from a corpus file."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            rid, text = line.rstrip("\n").split("\t", 1)
            yield rid, text
