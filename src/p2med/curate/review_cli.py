"""``p2med review DATASET --verdicts SHEET.csv``: apply the specialists' verdicts to the benchmark.

Rejected samples leave ``benchmark/samples.jsonl`` (kept in ``rejected.jsonl``; the unreviewed set stays in
``samples.unreviewed.jsonl``); agreement between reviewers is printed and saved in ``review_summary.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", type=Path, help="dataset folder written by p2med build")
    p.add_argument("--verdicts", type=Path, required=True,
                   help="the filled benchmark/review.csv, or a CSV of sample_id,reviewer,verdict,comment")


def run(args: argparse.Namespace) -> int:
    from .review import apply_review

    s = apply_review(args.dataset / "benchmark", args.verdicts)
    kappa = "n/a" if s["cohen_kappa"] is None else f"{s['cohen_kappa']:.3f}"
    agree = "n/a" if s["percent_agreement"] is None else f"{100 * s['percent_agreement']:.1f}%"
    print(f"reviewed {s['reviewed']} of {s['samples']} samples by {', '.join(s['reviewers']) or 'nobody'}: "
          f"kept {s['kept']}, rejected {s['rejected']}; agreement {agree} on {s['double_reviewed']} "
          f"double-reviewed samples, Cohen's kappa {kappa}")
    return 0
