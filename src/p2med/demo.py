"""``p2med demo``: the pipeline end to end on the embedded synthetic hospital.

Today: synthesize a small hospital, validate it, print what is in it and where the files are. Each later
stage of the pipeline (ingest, de-identify, build, train, evaluate) joins this command as it lands.
"""

from __future__ import annotations

import argparse
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "synth" / "demo.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default runs/demo)")
    p.add_argument("--config", type=Path, default=None, help="synthetic-hospital config (default: demo preset)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="synthetic-hospital config overrides")


def run(args: argparse.Namespace) -> int:
    from .config import load_config
    from .export.validate import format_report, validate
    from .synth.cli import format_summary
    from .synth.config import SynthConfig
    from .synth.hospital import synthesize

    cfg_path = args.config or (CONFIG if CONFIG.is_file() else None)
    cfg = load_config(SynthConfig, cfg_path, list(args.overrides))
    hospital = args.out / "hospital"
    truth = args.out / "hospital.truth"
    print(f"[1/2] synthesize a {cfg.patients}-patient hospital (seed {cfg.seed}) -> {hospital}")
    counts = synthesize(cfg, hospital, truth, overwrite=True)
    print(format_summary(counts, hospital, truth))
    print(f"[2/2] validate {hospital}")
    report = validate(hospital)
    print(format_report(report, max_lines=20))
    return 0 if report.ok else 1
