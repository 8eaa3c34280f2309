"""Checks every importer test shares: run an import capturing its printed lines, read the ledger, and count
the input objects from the input files themselves (never from the importer), so "every input line, row or
file exactly once" is checked against the data, not against a number written in a test."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from p2med.common.atomic import sha256_file
from p2med.common.ledger import read_manifest
from p2med.export.validate import validate
from p2med.importers.run import IMAGES_PREFIX, ImportResult, import_folder


def run_import(source: str, src: Path, out: Path, images: Path | None = None, **kw) -> tuple[ImportResult, list[str]]:
    """Import and return (result, printed lines); the export must validate."""
    lines: list[str] = []
    result = import_folder(source, src, out, images, echo=lines.append, progress=False, **kw)
    assert result.report.ok, [str(p) for p in result.report.errors][:10]
    assert validate(out).ok
    return result, lines


def import_reencoded(source: str, src: Path, name: str, encoding: str, tmp: Path) -> tuple[list[str], Path, Path]:
    """Import ``src`` as it is and a copy whose file ``name`` is re-encoded (made here, in ``tmp``); returns
    (lines printed for the copy, export of the copy, export of the original)."""
    work = tmp / f"in-{encoding}"
    work.mkdir()
    (work / name).write_bytes((src / name).read_text(encoding="utf-8").encode(encoding))
    _, printed = run_import(source, work, tmp / encoding)
    run_import(source, src, tmp / "utf-8")
    return printed, tmp / encoding, tmp / "utf-8"


def ledger(out: Path) -> dict[str, dict]:
    """source -> ledger row; fails if a source appears twice."""
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text(encoding="utf-8").splitlines()]
    by_source = {r["source"]: r for r in rows}
    assert len(by_source) == len(rows), "a source is in the ledger twice"
    for r in rows:
        assert r["status"] in ("used", "excluded", "quarantined")
        assert (r["reason"] is None) == (r["status"] == "used"), r
    return by_source


def jsonl_lines(path: Path, name: str) -> set[str]:
    return {f"{name}:{i}" for i, line in enumerate(path.read_bytes().splitlines(), 1) if line.strip()}


def csv_record_count(path: Path, encoding: str = "utf-8-sig") -> int:
    """Records of a CSV file (header and blank lines not counted), parsed by the stdlib csv module."""
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode(encoding, errors="replace"), newline="")))
    return sum(1 for row in rows[1:] if any(c.strip() for c in row))


def check_accounting(out: Path, src: Path, *, rows: dict[str, str] | None = None, images: Path | None = None,
                     image_rows: dict[str, str] | None = None) -> dict[str, dict]:
    """Every input object is in the ledger exactly once, and nothing else is.

    ``rows`` maps a file of ``src`` to how its objects are counted: ``jsonl`` (non-blank lines), ``csv`` or
    ``csv:gbk`` (records) or ``json`` / ``json:gb18030`` (elements of the top-level array); every other file is
    one object.
    """
    entries = ledger(out)
    expected_files: set[str] = set()
    row_counts: dict[str, int] = {}
    for root, prefix, kinds in ((src, "", rows or {}), (images, IMAGES_PREFIX, image_rows or {})):
        if root is None:
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = prefix + path.relative_to(root).as_posix()
            kind = kinds.get(path.relative_to(root).as_posix())
            if kind == "jsonl":
                lines = jsonl_lines(path, rel)
                assert lines <= set(entries), sorted(lines - set(entries))[:5]
                row_counts[rel] = len(lines)
            elif kind and kind.startswith("csv"):  # "csv" (UTF-8) or "csv:ENCODING"
                row_counts[rel] = csv_record_count(path, *kind.split(":")[1:])
            elif kind and kind.startswith("json"):  # "json" (UTF-8) or "json:ENCODING"
                row_counts[rel] = len(json.loads(path.read_bytes().decode(*kind.split(":")[1:] or ["utf-8"])))
            else:
                expected_files.add(rel)
    for rel, n in row_counts.items():
        mine = [s for s in entries if s.startswith(f"{rel}:") or s.startswith(f"{rel}[")]
        assert len(mine) == n, (rel, len(mine), n)
    row_sources = {s for s in entries if any(s.startswith(f"{rel}:") or s.startswith(f"{rel}[")
                                             for rel in row_counts)}
    assert set(entries) - row_sources == expected_files
    return entries


def check_manifest(out: Path, counts_key: str | None = None) -> dict:
    """The manifest lists every produced file with its sha256; returns it."""
    manifest = read_manifest(out)
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    produced = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(listed) == produced
    for rel in ("exams.jsonl", "records.jsonl", "ledger.jsonl"):
        if rel in listed:
            assert listed[rel] == sha256_file(out / rel)
    assert manifest["command"] == "import"
    return manifest


def table(out: Path, name: str) -> list[dict]:
    path = out / f"{name}.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
