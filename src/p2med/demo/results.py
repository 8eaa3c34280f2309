"""The demo's last two steps: answer the held-out benchmark (the model, and the model with shuffled images),
then score them beside chance and the non-LLM baselines into ``report/results.json`` and ``report.html``.

Targets (issue "The main job end to end"): finding + location >= 90% on X-ray and on CT, the shuffled-image
control within 10 points of chance, follow-up changes >= 80% (X-ray and CT together), outpatient diagnosis
>= 80%; point estimates decide, the CIs are reported beside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..common.atomic import write_json, write_jsonl
from ..eval.stats import mean_ci
from .config import DemoConfig
from .pipeline import final_checkpoint

STAGE_FOLDERS = ("stage1", "stage2", "stage3")


NO_CONTROL = "(no images: the shuffled-image control applies to image samples only)"


def _answers(folder: Path) -> dict[str, str]:
    path = folder / "generations.jsonl"
    return {r["sample_id"]: r["output"] for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def answer_step(cfg: DemoConfig, out: Path) -> Callable[[], None]:
    def step() -> None:
        from ..curate.build import load_samples
        from ..eval.adapters import open_generator
        from ..eval.config import EvalConfig
        from ..eval.generation import run_generation
        from ..eval.runner import evaluate
        from .controls import shuffle_images

        bench = out / "held_out" / "dataset" / "benchmark"
        shuffled_bench = out / "held_out" / "benchmark_shuffled"
        # only samples with images: a text sample's control answer would be the model's own answer again
        write_jsonl(shuffled_bench / "samples.jsonl",
                    [s for s in shuffle_images(load_samples(bench), seed=cfg.held_out_seed) if s["images"]])
        gen = open_generator(final_checkpoint(out), images=out / "held_out" / "cache",
                             max_new_tokens=cfg.max_new_tokens)
        ecfg = EvalConfig(batch_size=cfg.eval_batch_size, max_new_tokens=cfg.max_new_tokens)
        evaluate(gen, bench, out / "eval" / "model", ecfg)
        run_generation(gen, load_samples(shuffled_bench), out / "eval" / "shuffled", cfg.eval_batch_size,
                       cfg.max_new_tokens)
    return step


def _target(value: float | None, goal: float, detail: str) -> dict:
    return {"met": value is not None and value >= goal, "value": value, "goal": goal, "detail": detail}


def _targets(model: dict, shuffled: dict, chance: dict, changes: dict, reader: dict, states: dict) -> dict:
    def m(d: dict, t: str, f: str) -> float | None:
        return (d.get(t, {}).get(f) or {}).get("mean")
    out = {}
    for t, name in (("xray_report", "X-ray"), ("ct_report", "CT")):
        v = m(model, t, "finding_location")
        out[f"{name} finding + location >= 90%"] = _target(v, 0.9, f"{_pct(v)} of held-out {name} exams")
        s, c = m(shuffled, t, "finding_location"), chance.get(t, {}).get("finding_location")
        gap = None if s is None or c is None else abs(s - c)
        r = reader.get(t, {}).get("finding_location")
        out[f"{name} shuffled-image control within 10 points of chance"] = {
            "met": gap is not None and gap <= 0.10, "value": s, "goal": c,
            "detail": f"shuffled {_pct(s)} vs chance {_pct(c)}; a perfect reader of the shuffled images "
                      f"would score {_pct(r)}"}
    v = changes.get("mean")
    out["follow-up change >= 80%"] = _target(
        v, 0.8, f"{_pct(v)} of {changes.get('n', 0)} follow-ups (X-ray + CT) name finding, location and change; "
                f"the change word alone is right in {_pct(states.get('mean'))}")
    v = m(model, "outpatient", "diagnosis")
    out["outpatient diagnosis >= 80%"] = _target(v, 0.8, f"{_pct(v)} of held-out outpatient records")
    return out


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _by_modality(acc: dict) -> str:
    return ", ".join(f"{k} {_pct(acc[k])}" for k in sorted(acc, key=lambda k: (k != "all", k)))


def _training_notes(out: Path) -> list[str]:
    """What was trained how, from the last stage's lineage (the full training config) and checkpoint notes."""
    final = final_checkpoint(out)
    lineage = json.loads((final / "lineage.json").read_text(encoding="utf-8"))
    notes = [f"model preset {lineage['config'].get('model')}, batch size {lineage['config'].get('batch_size')}, "
             f"warm-up ratio {lineage['config'].get('warmup_ratio')}, seed {lineage['config'].get('seed')}"]
    for st in lineage["config"].get("stages", []):
        note = (f"{st.get('name')} on {st.get('data')}: trainable {st.get('trainable')}, "
                f"learning rates {st.get('lr')}, {st.get('epochs')} epoch(s)"
                + (f" or at most {st['max_steps']} steps of {lineage['config'].get('batch_size')} samples"
                   if st.get("max_steps") else "")
                + (f", {'/'.join(st['modalities'])} exams only" if st.get("modalities") else "")
                + (", radiographs mirrored left-right half the time (sides swapped)" if st.get("mirror") else ""))
        summary = final.parents[1] / str(st.get("name")) / "findings.json"
        if st.get("objective") == "findings" and summary.is_file():
            got = json.loads(summary.read_text(encoding="utf-8"))
            held = (got.get("history") or [{}])[-1].get("held_out_exact") or {}
            note += (f"; objective findings (multi-label findings read from the reports): exact-set accuracy "
                     f"{_by_modality(got.get('train_exact') or {})} on its {got.get('train_exams')} training exams, "
                     f"{_by_modality(held)} on {got.get('held_out_exams')} exams it held out")
        notes.append(note)
    notes += [str(n) for n in json.loads((final / "config.json").read_text(encoding="utf-8")).get("notes", [])]
    notes.append("Every weight was initialised at random here and trained on the training hospital's images and "
                 "report/record text only; the synthetic ground truth was never read, and the held-out hospital "
                 "was never trained on.")
    return notes


def report_step(cfg: DemoConfig, out: Path) -> Callable[[], None]:
    def step() -> None:
        print(f"    report: {write_results(cfg, out)}")
    return step


def write_results(cfg: DemoConfig, out: Path) -> Path:
    from ..curate.build import load_samples
    from .baselines import bag_of_words_baseline, chance, pixel_baseline, swapped_reader
    from .metrics import DemoScorer, score_samples, summarise
    from .report import write_report

    scorer = DemoScorer()
    samples = load_samples(out / "held_out" / "dataset" / "benchmark")
    answers, shuffled_answers = _answers(out / "eval" / "model"), _answers(out / "eval" / "shuffled")
    model_scores = score_samples(samples, answers, scorer)
    shuffled_scores = score_samples(samples, shuffled_answers, scorer)
    model, shuffled = summarise(model_scores), summarise(shuffled_scores)
    changes, states = (mean_ci([v for t in ("xray_report", "ct_report") for v in model_scores.get(t, {}).get(f, [])])
                       for f in ("change", "change_state"))
    base = chance(samples, scorer)
    reader = swapped_reader(samples, load_samples(out / "held_out" / "benchmark_shuffled"), scorer)
    baselines: dict = {}
    if cfg.baselines:
        seen: dict[str, dict] = {}
        for folder in STAGE_FOLDERS:
            for s in load_samples(out / "train" / "dataset" / folder):
                seen.setdefault(s["sample_id"], s)
        train = list(seen.values())
        for task in ("xray_report", "ct_report"):
            v = pixel_baseline(train, samples, out / "train" / "cache", out / "held_out" / "cache", task, scorer)
            if v:
                baselines.setdefault(task, {})["finding_location"] = {
                    "name": "logistic regression on downsampled pixels", "ci": mean_ci(v)}
        for task in ("outpatient", "first_course", "attending_round", "chief_round"):
            v = bag_of_words_baseline(train, samples, task, scorer)
            if v:
                baselines.setdefault(task, {})["diagnosis"] = {"name": "bag of character n-grams", "ci": mean_ci(v)}
    eval_results = json.loads((out / "eval" / "model" / "results.json").read_text(encoding="utf-8"))
    state = json.loads((out / "demo_state.json").read_text(encoding="utf-8"))
    results = {
        "hospitals": {"train": {"patients": cfg.train_patients, "seed": cfg.train_seed},
                      "held_out": {"patients": cfg.held_out_patients, "seed": cfg.held_out_seed}},
        "benchmark_samples": len(samples), "model": model, "shuffled": shuffled, "chance": base,
        "swapped_reader": reader, "baselines": baselines, "follow_up_change": changes,
        "follow_up_change_state": states, "targets": _targets(model, shuffled, base, changes, reader, states),
        "nlg": _nlg(eval_results), "training": {"notes": _training_notes(out)},
        "seconds": state.get("seconds", {}),
    }
    report_dir = out / "report"
    write_json(report_dir / "results.json", results)
    examples = []
    half = cfg.examples // 2
    for s in [s for s in samples if s["images"]][:half] + [s for s in samples if not s["images"]][:half]:
        examples.append({"sample_id": s["sample_id"], "reference": s["turns"][-1]["assistant"],
                         "model": answers.get(s["sample_id"], ""),
                         "shuffled": shuffled_answers.get(s["sample_id"], NO_CONTROL)})
    return write_report(report_dir, results, examples)


def _nlg(eval_results: dict) -> dict:
    """Per task: BLEU-1, BLEU-4, ROUGE-L, METEOR and CIDEr-D of the full model's answers, averaged over the
    task's output sections (from its ``p2med eval`` run, where each has a CI per section)."""
    out = {}
    for task, comps in sorted(eval_results.get("summary", {}).items()):
        row = {}
        for metric in ("bleu1", "bleu4", "rouge_l", "meteor", "cider"):
            vals = [c[metric]["mean"] for c in comps.values() if c.get(metric, {}).get("mean") is not None]
            row[metric] = round(sum(vals) / len(vals), 4) if vals else None
        out[task] = row
    return out
