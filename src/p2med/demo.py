"""``p2med demo``: the pipeline end to end on the embedded synthetic hospital.

Today: synthesize a small hospital, validate it, de-identify it with a demo key (and verify the result), ingest
the de-identified X-ray and CT exams into a cache of model-ready arrays (``p2med ingest``), and print what is
in each and where the files are. Each later stage of the pipeline (build, train, evaluate) joins this command
as it lands.
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
    print(f"[1/4] synthesize a {cfg.patients}-patient hospital (seed {cfg.seed}) -> {hospital}")
    counts = synthesize(cfg, hospital, truth, overwrite=True)
    print(format_summary(counts, hospital, truth))
    print(f"[2/4] validate {hospital}")
    report = validate(hospital)
    print(format_report(report, max_lines=20))
    if not report.ok:
        return 1
    status = _deidentify(hospital, args.out)
    if status:
        return status
    deid, cache = args.out / "hospital-deid", args.out / "cache"
    print(f"[4/4] ingest the de-identified imaging exams -> {cache}")
    if cache.exists():
        shutil.rmtree(cache)
    print(format_ingest(ingest_export(deid, cache, IngestConfig(), workers=2), cache))
    return 0


def _deidentify(hospital: Path, out: Path) -> int:
    """De-identify the demo hospital with a key made for the demo (a real key lives outside every run folder)."""
    import os
    import secrets

    from .deid.config import DeidConfig
    from .deid.export import deidentify_export
    from .deid.keys import DeidKey
    from .deid.verify import format_report, verify

    key_file = out / "demo-deid.key"
    if not key_file.is_file():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    key = DeidKey.load(key_file)
    deid = out / "hospital-deid"
    print(f"[3/4] de-identify {hospital} -> {deid} (demo key {key_file}), then verify")
    counts = deidentify_export(hospital, deid, key, DeidConfig(), overwrite=True)
    ledger = counts["ledger"]
    print(f"ledger: {ledger['used']} used, {ledger['excluded']} excluded, {ledger['quarantined']} quarantined; "
          f"{counts.get('files_flagged_for_review', 0)} image(s) flagged for review")
    result = verify(hospital, deid, key)
    print(format_report(result).splitlines()[-1])
    return 0 if result.ok else 1
