"""``p2med ingest EXPORT --out CACHE``: every radiology exam of an export -> model-ready arrays in a cache.

Trailing ``key=value`` arguments override ``configs/ingest/default.yaml`` (e.g. ``image_size=224``). Rerunning
into the same CACHE resumes (finished exams are skipped); ``--overwrite`` starts afresh. The cache format is
docs/ingest-cache.md.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "ingest" / "default.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("export", type=Path, help="export folder (see docs/export-format.md)")
    p.add_argument("--out", required=True, type=Path, help="cache folder to write (resumed when it exists)")
    p.add_argument("--config", type=Path, help="YAML config (default: configs/ingest/default.yaml)")
    p.add_argument("--workers", type=int, default=2, help="processes, one exam each (default 2)")
    p.add_argument("--overwrite", action="store_true", help="delete an existing cache folder first")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def run(args: argparse.Namespace) -> int:
    from ..common.errors import P2MedError
    from ..config import load_config
    from .config import IngestConfig
    from .ingest import ingest_export

    if args.workers < 1:
        raise P2MedError(f"--workers must be >= 1, got {args.workers}")
    path = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    cfg = load_config(IngestConfig, path, list(args.overrides))
    if not args.export.is_dir():
        raise P2MedError(f"export folder {args.export} does not exist")
    if args.overwrite and args.out.exists():
        shutil.rmtree(args.out)
    counts = ingest_export(args.export, args.out, cfg, workers=args.workers)
    print(format_summary(counts, args.out))
    return 0


def format_summary(counts: dict, out: Path) -> str:
    led = counts["ledger"]
    return "\n".join([
        f"cache: {out}  (exams.jsonl, ledger.jsonl, manifest.json, arrays/)",
        f"exams: {counts['exams_with_images']} of {counts['exam_rows']} gave images "
        + ", ".join(f"{k} {v}" for k, v in counts["exams_by_modality"].items()),
        "images: " + ", ".join(f"{k} {v}" for k, v in counts["images_by_role"].items()),
        f"files: used {led['used']}, excluded {led['excluded']}, quarantined {led['quarantined']}",
        "reasons: " + ", ".join(f"{k} {v}" for k, v in counts["ledger_reasons"].items()),
    ])
