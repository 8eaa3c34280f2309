"""``p2med demo [--out DIR] [--config YAML] [key=value ...]``: run (or resume) the demo and print where the
report is and how to serve the model. ``--reduced`` is the small, short version ``make test`` runs."""

from __future__ import annotations

import argparse
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "demo"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default runs/demo); "
                   "running again resumes it")
    p.add_argument("--config", type=Path, default=None, help="demo config (default configs/demo/default.yaml)")
    p.add_argument("--reduced", action="store_true", help="the small, short demo (configs/demo/reduced.yaml)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="demo config overrides")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from .config import DemoConfig
    from .pipeline import (Steps, build_step, check_free_space, deid_step, final_checkpoint, ingest_step,
                           synth_step, train_step)
    from .results import answer_step, report_step

    path = args.config or CONFIGS / ("reduced.yaml" if args.reduced else "default.yaml")
    cfg = load_config(DemoConfig, path if path.is_file() else None, list(args.overrides))
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    steps = Steps(out, cfg)
    check_free_space(out, cfg, steps)
    steps.run([
        ("synthesize the training hospital", synth_step(cfg, "train", out)),
        ("synthesize the held-out hospital", synth_step(cfg, "held_out", out)),
        ("de-identify both and verify", deid_step(cfg, out)),
        ("ingest the imaging exams", ingest_step(out)),
        ("build the training stages and the held-out benchmark", build_step(cfg, out)),
        ("train the tiny model through the three stages", train_step(cfg, out)),
        ("answer the held-out benchmark (model, shuffled images)", answer_step(cfg, out)),
        ("score against chance and baselines; write the report", report_step(cfg, out)),
    ])
    report = out / "report" / "report.html"
    print(f"\nreport: {report}\nfigures: {out / 'report' / 'results.json'}")
    print(f"serve the model: p2med serve --model {final_checkpoint(out)}")
    return 0
