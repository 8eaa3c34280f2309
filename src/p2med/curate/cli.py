"""``p2med build EXPORT --images CACHE --out DATASET``: the three training stages and the benchmark.

Trailing ``key=value`` arguments override the config (e.g. ``scale=0.02 benchmark.ct_report=50``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("export", type=Path, help="export folder (de-identified)")
    p.add_argument("--images", type=Path, help="ingest cache of the export (p2med ingest); without it, "
                                               "image tasks are dropped")
    p.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    p.add_argument("--config", type=Path, help="YAML config (default: configs/build/default.yaml values)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from .build import build_dataset
    from .config import BuildConfig

    cfg = load_config(BuildConfig, args.config, list(args.overrides))
    result = build_dataset(args.export, args.images, args.out, cfg)
    c = result["counts"]
    print(f"dataset: {args.out}")
    print("samples: " + ", ".join(f"{k} {v}" for k, v in c.items()))
    for w in result["warnings"]:
        print(f"warning: {w}")
    print(f"data card: {args.out / 'data_card.md'}; review sheet: {args.out / 'benchmark' / 'review.html'}")
    return 0
