"""``p2med demo``: the pipeline end to end on the embedded synthetic hospital.

Today: synthesize a small hospital, validate it, ingest its X-ray and CT exams into a cache of model-ready
arrays (``p2med ingest``), and print what is in each and where the files are. Each later stage of the
pipeline (de-identify, build, train, evaluate) joins this command as it lands.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "synth" / "demo.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default runs/demo)")
    p.add_argument("--config", type=Path, default=None, help="synthetic-hospital config (default: demo preset)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="synthetic-hospital config overrides")


def run(args: argparse.Namespace) -> int:
    from .config import load_config
    from .export.validate import format_report, validate
    from .imaging.cli import format_summary as format_ingest
    from .imaging.config import IngestConfig
    from .imaging.ingest import ingest_export
    from .synth.cli import format_summary
    from .synth.config import SynthConfig
    from .synth.hospital import synthesize

    cfg_path = args.config or (CONFIG if CONFIG.is_file() else None)
    cfg = load_config(SynthConfig, cfg_path, list(args.overrides))
    hospital = args.out / "hospital"
    truth = args.out / "hospital.truth"
    print(f"[1/3] synthesize a {cfg.patients}-patient hospital (seed {cfg.seed}) -> {hospital}")
    counts = synthesize(cfg, hospital, truth, overwrite=True)
    print(format_summary(counts, hospital, truth))
    print(f"[2/3] validate {hospital}")
    report = validate(hospital)
    print(format_report(report, max_lines=20))
    if not report.ok:
        return 1
    cache = args.out / "cache"
    print(f"[3/3] ingest the imaging exams -> {cache}")
    if cache.exists():
        shutil.rmtree(cache)
    print(format_ingest(ingest_export(hospital, cache, IngestConfig(), workers=2), cache))
    return 0
