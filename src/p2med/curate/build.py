"""``p2med build``: export + ingest cache -> validated, deduplicated stages 1-3 and the benchmark.

Order: validate items (ledger drops), deduplicate outpatient records, normalise categories, select the
benchmark by patient, drop the benchmark patients from training, group exams into multi-round
conversations, sample the three stages, write shards atomically, the review sheet, the data card, the
ledger (every exam and record once) and the manifest. Deterministic for a seed.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path

from ..common.atomic import sha256_file, write_jsonl
from ..common.errors import P2MedError
from ..common.ledger import Ledger, write_manifest
from ..config import to_dict
from ..export.tables import Export
from .config import BuildConfig
from .conversations import group_exams, to_sample
from .items import Item, load_items
from .prompts import Prompts
from .sampling import STAGES, Unit, counts
from .tokens import TokenCounter
from . import benchmark as bench

log = logging.getLogger(__name__)
UNMAPPED = "未分类"


def _dedup(items: list[Item], cfg: BuildConfig, ledger: Ledger) -> tuple[list[Item], dict]:
    from .dedup import dedup

    outpatient = [it for it in items if it.task == "outpatient"]
    result = dedup(((it.id, it.dedup_text()) for it in outpatient), cfg.dedup)
    kept_of = {m: c.kept for c in result.clusters for m in c.members if m != c.kept}
    short = set(result.too_short)
    out = []
    for it in items:
        if it.id in short and it.task == "outpatient":
            ledger.excluded(it.source, "too_short", "fewer than 5 character 5-grams: cannot be deduplicated")
        elif it.id in kept_of and it.task == "outpatient":
            ledger.excluded(it.source, "near_duplicate", f"near-duplicate of records/{kept_of[it.id]} (kept)")
        else:
            out.append(it)
    return out, {"records": len(outpatient), "clusters": len(result.clusters), "removed": len(kept_of),
                 "too_short": len(short)}


def _categorise(items: list[Item], cfg: BuildConfig) -> dict:
    from ..clinical.categories import CategoryNormaliser

    norm = CategoryNormaliser.from_yaml(cfg.categories)
    unmapped: Counter = Counter()
    for it in items:
        res = norm.normalise(it.diagnosis_text(), it.lang)
        it.categories = list(res.categories) or [UNMAPPED]
        for frag in res.unmapped:
            unmapped[frag] += 1
    return dict(unmapped.most_common(50))


def _write_shards(out: Path, stage: str, samples: list[dict], shard_size: int) -> list[str]:
    names = []
    for i in range(0, max(len(samples), 1), shard_size):
        name = f"{stage}/samples-{i // shard_size:05d}.jsonl"
        write_jsonl(out / name, samples[i:i + shard_size])
        names.append(name)
    return names


def build_dataset(export_dir: Path, cache_dir: Path | None, out: Path, cfg: BuildConfig) -> dict:
    export = Export.open(export_dir)
    cache = None
    if cache_dir is not None:
        from ..imaging.cache import ImageCache
        if not (Path(cache_dir) / "manifest.json").is_file():
            raise P2MedError(f"{cache_dir}: not an ingest cache (no manifest.json); run `p2med ingest` first")
        cache = ImageCache(cache_dir)
    prompts = Prompts.load(cfg.prompts)
    ledger = Ledger()
    items = load_items(export, cache, prompts, TokenCounter(cfg.tokenizer), ledger, cfg.max_tokens)
    items, dedup_stats = _dedup(items, cfg, ledger)
    unmapped = _categorise(items, cfg)

    groups = group_exams(items, cfg.mrc)
    records = [it for it in items if not it.modality]
    bench_turns, warnings = bench.select(groups, records, cfg.benchmark, cfg.seed)
    for w in warnings:
        log.warning(w)
    bench_patients = {t[-1].patient_id for t in bench_turns}
    bench_ids = {t[-1].id for t in bench_turns}

    train_groups = [g for g in groups if g[0].patient_id not in bench_patients]
    train_records = [r for r in records if r.patient_id not in bench_patients]
    samples: dict[str, dict] = {}
    members: dict[str, list[Item]] = {}
    units = []
    for turns in train_groups + [[r] for r in train_records]:
        s = to_sample(turns, prompts)
        samples[s["sample_id"]] = s
        members[s["sample_id"]] = turns
        units.append(Unit(s["sample_id"], s["task"], s["categories"][0]))
    th = cfg.thresholds.scaled(cfg.scale)
    stage_units = {name: fn(units, th, cfg.seed) for name, fn in STAGES.items()}

    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[str]] = {}
    used_in: dict[str, set[str]] = {}
    for name, us in stage_units.items():
        chosen = sorted(us, key=lambda u: u.key)
        files[name] = _write_shards(out, name, [samples[u.key] for u in chosen], cfg.shard_size)
        for u in chosen:
            for it in members[u.key]:
                used_in.setdefault(it.source, set()).add(name)
    bench_samples = sorted((to_sample(t, prompts) for t in bench_turns), key=lambda s: s["sample_id"])
    write_jsonl(out / "benchmark" / "samples.jsonl", bench_samples)
    for t in bench_turns:
        for it in t:
            used_in.setdefault(it.source, set()).add("benchmark" if it.id in bench_ids else "benchmark_prior")
    for it in items:
        where = used_in.get(it.source)
        if where:
            ledger.used(it.source, stages=sorted(where))
        elif it.patient_id in bench_patients:
            ledger.excluded(it.source, "benchmark_patient", "the patient has benchmark samples")
        else:
            ledger.excluded(it.source, "not_sampled", f"category {it.primary} of {it.task} is outside the "
                                                      f"stage thresholds (scale {cfg.scale})")
    from .review import write_review_sheet
    write_review_sheet(out / "benchmark", bench_samples, cache_dir)
    stage_counts = {name: counts(us) for name, us in stage_units.items()}
    bench_counts = counts([Unit(s["sample_id"], s["task"], s["categories"][0]) for s in bench_samples])
    card = {"scale": cfg.scale, "thresholds": th, "before": counts(units), "stages": stage_counts,
            "benchmark": bench_counts, "warnings": warnings, "dedup": dedup_stats, "unmapped": unmapped,
            "ledger": ledger.counts(), "reasons": ledger.reason_counts()}
    from .datacard import write_data_card
    write_data_card(out, card, stage_units, samples, bench_samples)
    ledger.write(out)
    cache_info = {}
    if cache_dir is not None:
        cache_info = {"cache": os.path.relpath(Path(cache_dir).resolve(), out.resolve()),
                      "cache_manifest_sha256": sha256_file(Path(cache_dir) / "manifest.json")}
    total = {name: sum(sum(c.values()) for c in sc.values()) for name, sc in stage_counts.items()}
    total["benchmark"] = len(bench_samples)
    write_manifest(out, "build", {"config": to_dict(cfg)}, total, **cache_info, warnings=warnings,
                   shards=files)
    return {"counts": total, "warnings": warnings, "card": card}


def load_samples(folder: Path) -> list[dict]:
    """Every sample of a stage or benchmark folder, in shard order."""
    out = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        if path.name.startswith("samples"):
            out += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out
