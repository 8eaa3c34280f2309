"""``evaluate``: the whole evaluation of one model on one benchmark, written into one run folder.

Steps: load the benchmark (malformed samples quarantined); mark image tasks "not applicable" for a text-only
model; generate (batched, resumable); parse sections; NLG and clinical metrics; the judge when one is given
(main judging at temperature 0, position swap, repeats) with every raw output kept; reliability; statistics
and breakdowns; the knowledge check; then ``results.json``, ``scores.jsonl``, ``report.md``, ``report.html``,
``ledger.jsonl`` and ``manifest.json``. Nothing in the folder depends on where it is or when it ran.
Example: ``evaluate(open_generator("runs/ckpt", images="runs/cache"), "runs/ds/benchmark", Path("runs/eval"),
EvalConfig())``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from ..clinical.scoring import ClinicalScorer
from ..common.atomic import sha256_file, write_json, write_jsonl, write_text
from ..common.ledger import Ledger, write_manifest
from . import mcq as mcq_mod
from .benchmark import IMAGE_TASKS, load_benchmark
from .config import EvalConfig
from .generation import Generator, run_generation
from .judge import Judge
from .reliability import clinician_agreement, length_bias, position_bias, read_clinician_scores, repeat_variance
from .report import render_html, render_markdown
from .scoring import JudgeCache, build_items, critical_by_sample, judge_items, score_text_metrics
from .summary import breakdown, counts, critical_rate, summarise

log = logging.getLogger(__name__)
RESULTS_FORMAT = "p2med-eval-results"
INTENDED_USE = ("Drafts of radiology reports and medical records for a clinician to check, edit and sign. "
                "Never a diagnosis, a triage decision or a treatment decision on its own.")
LIMITS = ["The LLM judge's scores are not robust on their own (the paper says so); read them with the "
          "reliability section, the clinical metrics and the NLG metrics.",
          "The finding extractor knows a fixed vocabulary of chest findings and the category normaliser a fixed "
          "dictionary; text outside them is not scored by the clinical metrics.",
          "A missing section is scored at the floor (judge 1, metrics 0) and counted, not dropped.",
          "Figures on a small benchmark have wide intervals; compare models with `p2med compare` (paired)."]


def _clean_config(cfg: EvalConfig) -> dict:
    """The config as recorded in results.json: file paths reduced to their names (no absolute paths)."""
    d = asdict(cfg)
    for key in ("path", "exemplars"):
        if d["judge"][key]:
            d["judge"][key] = Path(d["judge"][key]).name
    return d


def _examples(items: list[dict], per_task: int) -> dict:
    out: dict = {}
    for it in items:
        rows = out.setdefault(it["task"], [])
        sids = {r["sample_id"] for r in rows}
        if len(sids) < per_task or it["sample_id"] in sids:
            rows.append({"sample_id": it["sample_id"], "component": it["component"], "reference": it["reference"],
                         "candidate": it["candidate"], "missing": it["missing"],
                         "metrics": {k: v for k, v in it["metrics"].items() if k in (
                             "judge_accuracy", "judge_comprehensiveness", "rouge_l", "finding_f1", "diagnosis_f1")}})
    return out


def evaluate(generator: Generator, bench: str | Path, out_dir: Path, cfg: EvalConfig, judge: Judge | None = None,
             clinician_scores: str | Path | None = None, mcq_sources: list[str] | None = None,
             progress: bool = True) -> dict:
    """Evaluate ``generator`` on the benchmark at ``bench``; returns the results written to ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    samples, bad = load_benchmark(bench)
    bench_file = Path(bench) / "samples.jsonl" if Path(bench).is_dir() else Path(bench)
    bench_name = f"{bench_file.parent.parent.name}/{bench_file.parent.name}"  # DATASET/benchmark
    ledger = Ledger()
    for source, reason in bad:
        code, text = reason.split(": ", 1)
        ledger.quarantined(source, code, text)
    usable = [s for s in samples if generator.supports_images or s.task not in IMAGE_TASKS]
    usable_ids = {s.sample_id for s in usable}
    not_applicable = Counter(s.task for s in samples if s.sample_id not in usable_ids)
    for s in samples:
        if s.sample_id in usable_ids:
            ledger.used(s.sample_id, task=s.task)
        else:
            ledger.excluded(s.sample_id, "not_applicable", "image task and the model is text-only", task=s.task)
    log.info("benchmark: %d samples, %d evaluated, %d not applicable, %d quarantined", len(samples), len(usable),
             sum(not_applicable.values()), len(bad))

    outputs = run_generation(generator, [s.raw for s in usable], out_dir, cfg.batch_size, cfg.max_new_tokens, progress)
    clinical = ClinicalScorer(critical=tuple(cfg.critical_findings))
    items = build_items(usable, outputs)
    corpus = score_text_metrics(items, clinical)
    critical = critical_by_sample(usable, outputs, clinical)

    judge_info: dict = {"status": "not run", "reason": "no judge configured (judge.backend: none)"}
    reliability: dict = {"status": "not run", "reason": "the judge did not run"}
    if judge is not None:
        cache = JudgeCache(out_dir)
        repeat_ids = {s.sample_id for s in usable[:cfg.judge.repeat_subset]} if cfg.judge.repeats else set()
        judge_items(items, judge, cache, cfg.judge.position_swap, cfg.judge.repeats, cfg.judge.repeat_temperature,
                    repeat_ids, progress)
        rows = [cache.rows[k] for k in sorted(cache.rows)]  # file order: the same on a resumed run
        main = [r for r in rows if r["variant"] == "main"]
        judge_info = {"status": "ran", **judge.describe(), "calls": sum(len(r["attempts"]) for r in rows),
                      "judgings": len(rows), "failed_main": sum(r["score"] is None for r in main),
                      "zero_shot_components": sorted({f"{r['task']}/{r['component']}" for r in main if r["zero_shot"]})}
        reliability = {"status": "ran",
                       "position_bias": position_bias(rows, cfg.seed, cfg.bootstrap_resamples)
                       if cfg.judge.position_swap else "not run",
                       "repeat_variance": repeat_variance(rows) if cfg.judge.repeats else "not run",
                       "length_bias": length_bias(items), "clinician_agreement": "not run"}
        if clinician_scores:
            reliability["clinician_agreement"] = clinician_agreement(read_clinician_scores(clinician_scores), rows)
            ledger.used(Path(clinician_scores).name, kind="clinician_scores")

    mcq_results: dict = {"status": "not run"}
    if mcq_sources:
        mcq_results = {"status": "ran"}
        mcq_rows = []
        for spec in mcq_sources:
            name, all_items = mcq_mod.load_source(spec)
            chosen = mcq_mod.sample_items(all_items, cfg.mcq_limit, cfg.seed)
            answers = run_generation(generator, [mcq_mod.as_sample(it) for it in chosen], out_dir, cfg.batch_size,
                                     cfg.mcq_max_new_tokens, progress, file=f"mcq_{name}_generations.jsonl")
            mcq_results[name], rows = mcq_mod.score(chosen, answers, cfg.confidence)
            mcq_rows += rows
            for it in chosen:
                ledger.used(it["id"], kind="mcq")
        write_jsonl(out_dir / "mcq.jsonl", mcq_rows)

    results = {
        "format": RESULTS_FORMAT, "version": 1, "model": generator.describe(),
        "benchmark": {"name": bench_name, "samples_sha256": sha256_file(bench_file), "samples": len(samples),
                      "evaluated": len(usable), "quarantined": len(bad),
                      "tasks": dict(sorted(Counter(s.task for s in samples).items())),
                      "languages": dict(sorted(Counter(s.lang for s in samples).items()))},
        "not_applicable": dict(sorted(not_applicable.items())),
        "config": _clean_config(cfg),
        "counts": counts(items),
        "summary": summarise(items, cfg.confidence),
        "corpus": corpus,
        "judge": judge_info,
        "reliability": reliability,
        "breakdown": breakdown(items, critical, cfg.confidence),
        "critical_findings": {**critical_rate(critical), "patterns": list(cfg.critical_findings)},
        "mcq": mcq_results,
        "examples": _examples(items, cfg.examples_per_task),
        "model_card": {"intended_use": INTENDED_USE, "limits": LIMITS, "lineage": generator.describe(),
                       "data": f"benchmark {bench_name}: {len(samples)} samples "
                               + ", ".join(f"{t} {n}" for t, n in sorted(Counter(s.task for s in samples).items()))},
    }
    write_jsonl(out_dir / "scores.jsonl", [{k: it[k] for k in ("sample_id", "task", "component", "lang", "missing",
                                                                "metrics", "judge", "facets")} for it in items])
    write_json(out_dir / "results.json", results)
    write_text(out_dir / "report.md", render_markdown(results))
    write_text(out_dir / "report.html", render_html(results))
    ledger.write(out_dir)
    write_manifest(out_dir, "eval", {"model": generator.describe().get("name"), "benchmark": bench_name},
                   {"samples": len(samples), "evaluated": len(usable), "not_applicable": sum(not_applicable.values()),
                    "quarantined": len(bad), "ledger": ledger.counts()})
    return results
