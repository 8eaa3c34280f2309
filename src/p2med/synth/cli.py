"""``p2med synth --out DIR --patients N --seed S``: write a synthetic hospital export and its ground truth.

Trailing ``key=value`` arguments override the config (e.g. ``ct_share=0.5 xray.noise=0.03``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="export folder to create")
    p.add_argument("--patients", type=int, help="number of children (default from the config: 200)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--truth", type=Path, help="ground-truth folder (default: <out>.truth beside the export)")
    p.add_argument("--config", type=Path, help="YAML config (default: built-in defaults = configs/synth/default.yaml)")
    p.add_argument("--workers", type=int, help="rendering processes (default 2; output does not depend on it)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from .config import SynthConfig
    from .hospital import synthesize

    overrides = list(args.overrides)
    for name in ("patients", "seed", "workers"):
        if getattr(args, name) is not None:
            overrides.append(f"{name}={getattr(args, name)}")
    cfg = load_config(SynthConfig, args.config, overrides)
    counts = synthesize(cfg, args.out, args.truth, overwrite=args.overwrite)
    truth = args.truth or args.out.with_name(args.out.name + ".truth")
    print(format_summary(counts, args.out, truth))
    return 0


def format_summary(counts: dict, out: Path, truth: Path) -> str:
    lines = [f"export: {out}  (ground truth: {truth})", f"patients: {counts['patients']}",
             "exams: " + ", ".join(f"{k} {v}" for k, v in sorted(counts["exams"].items())),
             "records: " + ", ".join(f"{k} {v}" for k, v in counts["records"].items()),
             "diseases (records): " + ", ".join(f"{k} {v}" for k, v in counts["diseases"].items())]
    return "\n".join(lines)
