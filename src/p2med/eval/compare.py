"""``p2med compare RUN_A RUN_B [--out DIR]``: two evaluation runs on the same samples, paired.

For every task, component and metric both runs have, the items present in both are paired by sample id: mean
difference B - A, paired t-test, t-interval and a seeded bootstrap CI of the difference. The knowledge check is
paired by question (e.g. base LLM = A, fine-tuned = B: did fine-tuning cost general knowledge?). Items in only
one run are counted, never paired. With ``--out`` the comparison is written as compare.json / compare.md with a
ledger (every sample of either run: used when paired, excluded when in one run only) and a manifest.
Example: ``compare_runs(Path("runs/eval_base"), Path("runs/eval_ft"))["paired"]["ct_report"]["impression"]``.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from ..common.errors import P2MedError
from .stats import paired


def _rows(run: Path, name: str) -> list[dict]:
    path = run / name
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _check_run(run: Path) -> dict:
    path = run / "results.json"
    if not path.is_file():
        raise P2MedError(f"{run}: not an evaluation run (no results.json; make one with p2med eval)")
    return json.loads(path.read_text(encoding="utf-8"))


def compare_runs(run_a: Path, run_b: Path, n_resamples: int = 2000, seed: int = 0, confidence: float = 0.95) -> dict:
    ra, rb = _check_run(run_a), _check_run(run_b)
    a = {(r["sample_id"], r["component"]): r for r in _rows(run_a, "scores.jsonl")}
    b = {(r["sample_id"], r["component"]): r for r in _rows(run_b, "scores.jsonl")}
    both = sorted(set(a) & set(b))
    pairs: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: ([], []))))
    for key in both:
        x, y = a[key], b[key]
        for metric in sorted(set(x["metrics"]) & set(y["metrics"])):
            if x["metrics"][metric] is not None and y["metrics"][metric] is not None:
                pa, pb = pairs[x["task"]][x["component"]][metric]
                pa.append(x["metrics"][metric])
                pb.append(y["metrics"][metric])
    out_pairs = {t: {c: {m: paired(v[0], v[1], n_resamples, seed, confidence) for m, v in sorted(ms.items())}
                     for c, ms in sorted(cs.items())} for t, cs in sorted(pairs.items())}
    mcq: dict = {}
    qa = {r["id"]: r for r in _rows(run_a, "mcq.jsonl")}
    qb = {r["id"]: r for r in _rows(run_b, "mcq.jsonl")}
    by_source: dict = defaultdict(lambda: ([], []))
    for qid in sorted(set(qa) & set(qb)):
        xs, ys = by_source[qid.split("/")[0]]
        xs.append(qa[qid]["correct"])
        ys.append(qb[qid]["correct"])
    for source, (xs, ys) in sorted(by_source.items()):
        mcq[source] = paired(xs, ys, n_resamples, seed, confidence)
    ids_a, ids_b = {k[0] for k in a}, {k[0] for k in b}
    return {"a": {"model": ra["model"].get("name"), "benchmark": ra["benchmark"]["name"]},
            "b": {"model": rb["model"].get("name"), "benchmark": rb["benchmark"]["name"]},
            "same_benchmark": ra["benchmark"]["samples_sha256"] == rb["benchmark"]["samples_sha256"],
            "paired_samples": len(ids_a & ids_b), "only_a": sorted(ids_a - ids_b), "only_b": sorted(ids_b - ids_a),
            "paired": out_pairs, "mcq": mcq}


def render(cmp: dict) -> str:
    from .report import label

    def num(x):
        return "—" if x is None else f"{x:.3f}"

    lines = [f"# {cmp['b']['model']} (B) vs {cmp['a']['model']} (A)", "",
             f"Benchmark A {cmp['a']['benchmark']}, B {cmp['b']['benchmark']} (same file: {cmp['same_benchmark']}); "
             f"{cmp['paired_samples']} samples paired, {len(cmp['only_a'])} only in A, {len(cmp['only_b'])} only in B.",
             "", "| Task / component | Metric | n | Mean A | Mean B | B - A | 95% CI (t) | Bootstrap 95% CI | p |",
             "|---|---|---|---|---|---|---|---|---|"]
    for t, comps in cmp["paired"].items():
        for c, ms in comps.items():
            for m, v in ms.items():
                lines.append(f"| {label(t, c)} | {m} | {v['n']} | {num(v['mean_a'])} | {num(v['mean_b'])} | "
                             f"{num(v['mean_diff'])} | [{num(v['diff_ci_low'])}, {num(v['diff_ci_high'])}] | "
                             f"[{num(v['bootstrap_ci_low'])}, {num(v['bootstrap_ci_high'])}] | {num(v['p'])} |")
    for source, v in cmp["mcq"].items():
        lines.append(f"| knowledge check {source} | accuracy | {v['n']} | {num(v['mean_a'])} | {num(v['mean_b'])} | "
                     f"{num(v['mean_diff'])} | [{num(v['diff_ci_low'])}, {num(v['diff_ci_high'])}] | "
                     f"[{num(v['bootstrap_ci_low'])}, {num(v['bootstrap_ci_high'])}] | {num(v['p'])} |")
    return "\n".join(lines) + "\n"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a", type=Path, help="evaluation run A (e.g. the base LLM or the previous model)")
    p.add_argument("run_b", type=Path, help="evaluation run B (e.g. the fine-tuned or new model)")
    p.add_argument("--out", type=Path, help="write compare.json, compare.md, ledger.jsonl and manifest.json here")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def run(args: argparse.Namespace) -> int:
    from ..common.atomic import write_json, write_text
    from ..common.ledger import Ledger, write_manifest

    cmp = compare_runs(args.run_a, args.run_b, args.resamples, args.seed)
    text = render(cmp)
    print(text, end="")
    if args.out:
        write_json(args.out / "compare.json", cmp)
        write_text(args.out / "compare.md", text)
        ledger = Ledger()
        for sid in sorted({r["sample_id"] for run in (args.run_a, args.run_b) for r in _rows(run, "scores.jsonl")}):
            if sid in cmp["only_a"] or sid in cmp["only_b"]:
                ledger.excluded(sid, "unpaired", "evaluated in one run only")
            else:
                ledger.used(sid)
        ledger.write(args.out)
        write_manifest(args.out, "compare", {"a": cmp["a"], "b": cmp["b"], "resamples": args.resamples,
                                             "seed": args.seed}, ledger.counts())
    return 0
