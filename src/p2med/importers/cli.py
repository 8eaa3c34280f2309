"""``p2med import SOURCE SRC_DIR --out EXPORT_DIR [--images DIR]``: a public dataset -> a hospital export.

Prints one line per bad or partial input (file/row, what is wrong, what was done with it), then a summary
and the result of ``p2med validate`` on the new export; exit 0 when it validates. Sources and their mapping:
docs/importers.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import SOURCES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "sources:\n" + "\n".join(f"  {name:<13} {text}" for name, (_, text) in SOURCES.items())
    p.add_argument("source", choices=list(SOURCES), metavar="SOURCE", help="dataset kind (listed below)")
    p.add_argument("src", type=Path, metavar="SRC_DIR", help="the dataset's folder (read only)")
    p.add_argument("--out", required=True, type=Path, help="export folder to create")
    p.add_argument("--images", type=Path, help="iu-xray only: folder of IU images (e.g. iu_xray_images_mini)")
    p.add_argument("--link", choices=("copy", "hardlink"), default="copy",
                   help="put image files into the export as copies (default) or hard links (same disk)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    p.add_argument("--max-lines", type=int, default=50, help="print at most this many problem lines (default 50)")


def run(args: argparse.Namespace) -> int:
    from ..export.validate import format_report
    from .run import import_folder

    result = import_folder(args.source, args.src, args.out, args.images, link=args.link,
                           overwrite=args.overwrite, max_lines=args.max_lines)
    print(format_summary(args.source, args.out, result.counts, result.quiet))
    print(format_report(result.report, max_lines=20))
    return 0 if result.report.ok else 1


def format_summary(source: str, out: Path, counts: dict, quiet: dict[str, int]) -> str:
    """The printed summary: what the export holds (text-only and report-less exams counted) and the ledger."""
    lines = [f"import {source} -> {out}", f"patients {counts['patients']}, visits {counts['visits']}"]
    if counts["exams"]:
        exams = ", ".join(f"{k} {v}" for k, v in counts["exams"].items())
        lines.append(f"exams: {exams}; with images {counts['exams_with_images']} ({counts['image_files']} image "
                     f"files), text-only {counts['exams_text_only']}, without report {counts['exams_without_report']}")
    if counts["records"]:
        lines.append("records: " + ", ".join(f"{k} {v}" for k, v in counts["records"].items()))
    reasons = ", ".join(f"{k} {v}" for k, v in counts["reasons"].items()) or "none"
    lines.append("ledger: " + ", ".join(f"{k} {v}" for k, v in counts["ledger"].items()) + f"; reasons: {reasons}")
    if quiet:
        lines.append("not printed one by one (expected): " + ", ".join(f"{k} {v}" for k, v in quiet.items()))
    return "\n".join(lines)
