"""``p2med train --config CFG [--stage 1|2|3|all] [--resume]``: train the model through its stages.

Reads a training config (``configs/train/*.yaml``: the model preset, the dataset of ``p2med build``, batches,
optimizer, stages) plus ``key=value`` overrides; ``--dataset`` and ``--out`` set those two fields. Runs on one
process, or on many when launched by torchrun (see docs/training.md). Prints the last stage's checkpoint folder.
Example: ``p2med train --config configs/train/tiny.yaml --dataset runs/ds --out runs/train``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="training config (e.g. configs/train/tiny.yaml)")
    p.add_argument("--stage", default="all", help="1, 2, 3 (or a stage name) or all (default)")
    p.add_argument("--resume", action="store_true",
                   help="continue: skip finished stages, restart a stage from its last complete checkpoint")
    p.add_argument("--dataset", help="DATASET folder written by p2med build (sets dataset=)")
    p.add_argument("--out", help="output folder (sets out=)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. batch_size=4")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from .config import TrainConfig
    from .run import train

    overrides = list(args.overrides)
    if args.dataset:
        overrides.append(f"dataset={args.dataset}")
    if args.out:
        overrides.append(f"out={args.out}")
    cfg = load_config(TrainConfig, args.config, overrides)
    final = train(cfg, args.stage, args.resume)
    if final is not None and os.environ.get("RANK", "0") == "0":
        print(final)
    return 0
