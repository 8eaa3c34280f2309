"""``p2med validate EXPORT``: check an export; errors exit 1, warnings only exit 0."""

from __future__ import annotations

import argparse

from .validate import format_report, report_json, validate


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("export", help="export folder")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--max-lines", type=int, default=200, help="at most this many problem lines (default 200)")


def run(args: argparse.Namespace) -> int:
    report = validate(args.export)
    print(report_json(report) if args.json else format_report(report, args.max_lines))
    return 0 if report.ok else 1
