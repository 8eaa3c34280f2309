"""``p2med dedup IN.jsonl --id-field id --text-field text --out DIR``: near-duplicate clusters of a JSONL file.

Writes into DIR ``clusters.jsonl`` (one line per cluster of two or more records:
``{"members": [every id, the kept one included], "kept": id}``), ``ledger.jsonl`` (every input line once:
used = kept or unique; excluded = near-duplicate of a kept record, or too short; quarantined = not a JSON
object, no string id or text, or an id seen on an earlier line) and ``manifest.json``.
``--text-field a,b,c`` concatenates several fields in that order (absent or null ones count as empty).
Trailing ``key=value`` arguments override the config, e.g. ``threshold=0.9 workers=1``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Iterator

COUNTED = ("records", "too_short", "colliding_pairs", "giant_buckets", "candidates", "jaccard_checks",
           "duplicate_pairs", "clusters", "dropped")
SPEED_ONLY = ("workers", "shard_records", "verify_batch")   # change the speed, never the output


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="JSON Lines file, one record per line")
    p.add_argument("--id-field", default="id", help="field holding the record id (default: id)")
    p.add_argument("--text-field", default="text",
                   help="field holding the text, or comma-separated fields concatenated in order (default: text)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--config", type=Path, help="YAML config (default: configs/dedup/default.yaml = built-in)")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def run(args: argparse.Namespace) -> int:
    from ..common.atomic import write_jsonl
    from ..common.errors import P2MedError
    from ..common.ledger import Ledger, write_manifest
    from ..config import load_config, to_dict
    from .dedup import DedupConfig, dedup

    cfg = load_config(DedupConfig, args.config, args.overrides)
    if not args.input.is_file():
        raise P2MedError(f"{args.input}: no such file (expected a JSON Lines file of records)")
    if args.out.exists() and any(args.out.iterdir()) and not args.overwrite:
        raise P2MedError(f"{args.out} exists and is not empty; pass --overwrite to write into it")
    args.out.mkdir(parents=True, exist_ok=True)
    fields = [f.strip() for f in args.text_field.split(",") if f.strip()]
    name = args.input.name
    ledger = Ledger()
    lines: dict[str, int] = {}                                    # id -> line number
    records = _records(args.input, args.id_field, fields, ledger, lines)
    result = dedup(records, cfg, progress=True)

    too_short = set(result.too_short)
    kept_of = {m: c for c in result.clusters for m in c.members}
    for rid, line in lines.items():
        source = f"{name}:{line}"
        cluster = kept_of.get(rid)
        if rid in too_short:
            ledger.excluded(source, "too_short", f"line {line} has fewer than {cfg.min_ngrams} distinct "
                            f"{cfg.ngram}-grams", id=rid)
        elif cluster is not None and cluster.kept != rid:
            ledger.excluded(source, "near_duplicate", f"line {line} is in a cluster of {len(cluster.members)} "
                            f"records (Jaccard >= {cfg.threshold}) whose kept record is line "
                            f"{lines[cluster.kept]}", id=rid)
        else:
            ledger.used(source, id=rid)
    write_jsonl(args.out / "clusters.jsonl", ({"members": c.members, "kept": c.kept} for c in result.clusters))
    ledger.write(args.out)
    stats = result.stats
    params = {k: v for k, v in to_dict(cfg).items() if k not in SPEED_ONLY}
    params.update(input=name, id_field=args.id_field, text_fields=fields)
    counts = {k: getattr(stats, k) for k in COUNTED}
    counts["lines"] = ledger.counts()
    write_manifest(args.out, "dedup", params, counts, files=["clusters.jsonl", "ledger.jsonl"])
    c = ledger.counts()
    print(f"{len(ledger)} lines: {c['used']} used, {c['excluded']} excluded ({stats.dropped} near-duplicates in "
          f"{stats.clusters} clusters, {stats.too_short} too short), {c['quarantined']} quarantined -> {args.out}")
    return 0


def _records(path: Path, id_field: str, fields: list[str], ledger, lines: dict[str, int]) -> Iterator[tuple]:
    """(id, text) of every usable line; the others go to the ledger as quarantined."""
    source = path.name
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, 1):
            where = f"{source}:{n}"
            try:
                row = json.loads(raw) if raw.strip() else None
            except json.JSONDecodeError as exc:
                ledger.quarantined(where, "unparseable", f"line {n} is not JSON ({exc.msg})")
                continue
            if not isinstance(row, dict):
                ledger.quarantined(where, "unparseable", f"line {n} is not a JSON object")
                continue
            rid = row.get(id_field)
            if not isinstance(rid, str) or not rid:
                ledger.quarantined(where, "missing_field", f"line {n} has no non-empty string {id_field!r}")
                continue
            parts = [row.get(f) for f in fields]
            if all(p is None for p in parts) or not all(p is None or isinstance(p, str) for p in parts):
                ledger.quarantined(where, "missing_field", f"line {n}: {', '.join(fields)} must be strings "
                                   "(absent or null counts as empty, but not all of them)")
                continue
            if rid in lines:
                ledger.quarantined(where, "duplicate_id", f"line {n} repeats the id of line {lines[rid]}")
                continue
            lines[rid] = n
            yield rid, "".join(p or "" for p in parts)
