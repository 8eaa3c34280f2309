"""``p2med eval --model CKPT --bench DATASET/benchmark --out REPORT_DIR``: score a model on the six-task benchmark.

``--model`` is a P2Med checkpoint or a plain causal LM folder (text-only baseline: image tasks "not applicable").
The judge runs when one is named (``--judge-url URL --judge-model NAME`` for an OpenAI-compatible server inside
the hospital, or ``--judge-hf FOLDER``); otherwise its columns say "not run". Re-running on the same ``--out``
resumes (answers and judgings already there are kept). Trailing ``key=value`` arguments override the config
(``configs/eval/default.yaml``), e.g. ``judge.repeats=3 max_new_tokens=256``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "eval" / "default.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, type=Path, help="P2Med checkpoint folder or a causal LM folder")
    p.add_argument("--bench", required=True, type=Path, help="DATASET/benchmark (holding samples.jsonl)")
    p.add_argument("--out", required=True, type=Path, help="report folder (created; re-running resumes)")
    p.add_argument("--images", type=Path, help="ingest cache root (default: the cache named in DATASET/manifest.json)")
    p.add_argument("--model-kind", default="auto", choices=["auto", "p2med", "causal-lm"],
                   help="how to read --model (default: detect)")
    p.add_argument("--judge-url", help="OpenAI-compatible judge endpoint, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--judge-model", help="model name the judge endpoint serves")
    p.add_argument("--judge-hf", type=Path, help="local Hugging Face causal LM folder to judge with")
    p.add_argument("--clinician-scores", type=Path,
                   help="CSV sample_id,component,metric,score,rater: judge agreement with clinicians")
    p.add_argument("--mcq", action="append", default=[], metavar="FORMAT=PATH",
                   help="knowledge check: medqa=PATH (MedQA-MCMLE jsonl) or cmmlu=PATH (CMMLU csv/folder); repeatable")
    p.add_argument("--config", type=Path, help="YAML config (default: configs/eval/default.yaml)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def cache_root(bench: Path, given: Path | None) -> Path | None:
    """--images, else the ``cache`` the dataset manifest names (absolute, relative to the working directory, or
    relative to the dataset folder), else None."""
    if given is not None:
        return given
    dataset = bench.parent if bench.is_dir() else bench.parent.parent
    manifest = dataset / "manifest.json"
    if not manifest.is_file():
        return None
    cache = json.loads(manifest.read_text(encoding="utf-8")).get("cache")
    if not cache:
        return None
    for cand in (Path(cache), dataset / cache):
        if cand.is_dir():
            return cand
    return None


def eval_config(path: Path | None, overrides: list[str], judge_url: str | None = None,
                judge_model: str | None = None, judge_hf: Path | None = None):
    """The EvalConfig from the YAML (default: configs/eval/default.yaml), the judge flags and key=value overrides."""
    from ..config import load_config
    from .config import EvalConfig

    overrides = list(overrides)
    if judge_url:
        overrides += ["judge.backend=openai", f"judge.url={judge_url}", f"judge.model={judge_model or ''}"]
    if judge_hf:
        overrides += ["judge.backend=hf", f"judge.path={judge_hf}"]
    return load_config(EvalConfig, path or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None), overrides)


def build_judge(cfg):
    """The configured Judge, or None when ``judge.backend`` is none."""
    from .exemplars import load_exemplars
    from .judge import Judge
    from .judge_backends import make_backend

    backend = make_backend(cfg.judge, cfg.seed)
    return None if backend is None else Judge(backend, load_exemplars(cfg.judge.exemplars or None),
                                              cfg.judge.max_retries, cfg.judge.max_new_tokens)


def run(args: argparse.Namespace) -> int:
    from .adapters import open_generator
    from .report import fmt, label
    from .runner import evaluate

    cfg = eval_config(args.config, args.overrides, args.judge_url, args.judge_model, args.judge_hf)
    generator = open_generator(args.model, args.model_kind, cache_root(args.bench, args.images), cfg.max_new_tokens)
    judge = build_judge(cfg)
    results = evaluate(generator, args.bench, args.out, cfg, judge, args.clinician_scores, args.mcq,
                       progress=not args.quiet)
    b = results["benchmark"]
    print(f"model {results['model'].get('name')} ({results['model'].get('kind')}) on {b['name']}: "
          f"{b['evaluated']} of {b['samples']} samples evaluated, not applicable {results['not_applicable'] or 0}, "
          f"quarantined {b['quarantined']}; judge {results['judge']['status']}")
    for task, comps in results["summary"].items():
        for comp, m in comps.items():
            judge_txt = fmt(m.get("judge_accuracy")) if results["judge"]["status"] == "ran" else "not run"
            print(f"  {label(task, comp)}: judge accuracy {judge_txt}; ROUGE-L {fmt(m.get('rouge_l'))}")
    print(f"report: {args.out / 'report.html'}")
    return 0
