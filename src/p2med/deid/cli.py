"""``p2med deid EXPORT --out DEID_EXPORT --key-file KEY``: de-identify an export (DICOM and text);
``p2med deid --verify SOURCE DEID_EXPORT [--key-file KEY]``: scan the result for any identifier of the source.

Trailing ``key=value`` arguments override the config (e.g. ``workers=1 suspect_burned_in=quarantine``).
The key file is read, never copied: create it with ``python -c "import secrets; print(secrets.token_hex(32))"
> deid.key && chmod 600 deid.key`` and keep it outside every export (README "De-identification").
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("export", type=Path, help="the source export (with --verify: the source export)")
    p.add_argument("rest", nargs="*", metavar="[DEID_EXPORT] [key=value]",
                   help="with --verify: the de-identified export; otherwise config overrides")
    p.add_argument("--out", type=Path, help="folder of the de-identified export to write")
    p.add_argument("--key-file", type=Path, help="secret key file (at least 32 bytes, mode 600)")
    p.add_argument("--verify", action="store_true",
                   help="scan DEID_EXPORT for identifiers of the source export and patterns; exit 1 on any hit")
    p.add_argument("--config", type=Path, help="YAML config (default: built-in = configs/deid/default.yaml)")
    p.add_argument("--workers", type=int, help="processes for image files (default 2)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    p.add_argument("--json", action="store_true", help="with --verify: print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from ..common.errors import P2MedError
    from .keys import DeidKey

    if args.verify:
        from .verify import format_report, verify

        if not args.rest:
            raise P2MedError("--verify needs two folders: p2med deid --verify SOURCE DEID_EXPORT")
        key = DeidKey.load(args.key_file) if args.key_file else None
        report = verify(args.export, Path(args.rest[0]), key, workers=args.workers or 2)
        print(format_report(report, as_json=args.json))
        return 0 if report.ok else 1

    from ..config import load_config
    from .config import DeidConfig
    from .export import deidentify_export

    if args.out is None or args.key_file is None:
        raise P2MedError("de-identification needs --out DEID_EXPORT and --key-file KEY")
    overrides = list(args.rest) + ([f"workers={args.workers}"] if args.workers is not None else [])
    cfg = load_config(DeidConfig, args.config, overrides)
    key = DeidKey.load(args.key_file)
    counts = deidentify_export(args.export, args.out, key, cfg, overwrite=args.overwrite)
    ledger = counts["ledger"]
    print(f"de-identified export: {args.out}")
    print(f"ledger: {ledger['used']} used, {ledger['excluded']} excluded, {ledger['quarantined']} quarantined; "
          f"{counts.get('files_flagged_for_review', 0)} image(s) flagged for review (burned-in text suspected)")
    print("text replacements: " + (", ".join(f"{k} {v}" for k, v in counts["text_replacements"].items()) or "none"))
    print(f"check it: p2med deid --verify {args.export} {args.out} --key-file {args.key_file}")
    return 0
