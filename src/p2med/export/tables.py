"""Read and write the export's tables (JSONL, CSV or Parquet) and its ``export.json``.

Rows come back as ``(line, dict)`` so every message can name the file and line. Empty CSV cells are None;
the ``files`` column is a list (``|``-joined in CSV/Parquet cells). ``Export`` knows nothing about checks.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..common.errors import P2MedError
from ..common.atomic import write_json, write_jsonl
from .schema import FILES_SEPARATOR, FORMAT_NAME, FORMAT_VERSION, LIST_FIELDS, TABLE_SUFFIXES, TABLES, Variant

EXPORT_JSON = "export.json"


class TableError(P2MedError, ValueError):
    """A table cannot be read at all (bad encoding, bad Parquet file); names the file."""


@dataclass
class BadRow:
    """A line that cannot be parsed; kept so validation can report it instead of crashing."""

    line: int
    error: str


def find_table(root: Path, table: str) -> list[Path]:
    """All files that could hold ``table`` (more than one is a validation error)."""
    return [root / f"{table}{suffix}" for suffix in TABLE_SUFFIXES if (root / f"{table}{suffix}").is_file()]


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, str) and v == "":
            v = None
        if k in LIST_FIELDS and isinstance(v, str):
            v = [p for p in v.split(FILES_SEPARATOR) if p]
        out[k] = v
    return out


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    """Yield ``(line, row)``; a row that cannot be parsed comes back as ``BadRow`` (never raises mid-file)."""
    suffix = path.suffix
    if suffix == ".jsonl":
        with open(path, "rb") as fh:
            for i, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    yield i, BadRow(i, f"not UTF-8 ({exc.reason} at byte {exc.start})")
                    continue
                except json.JSONDecodeError as exc:
                    yield i, BadRow(i, f"not valid JSON ({exc.msg}, column {exc.colno})")
                    continue
                if not isinstance(obj, dict):
                    yield i, BadRow(i, f"expected a JSON object, got {type(obj).__name__}")
                    continue
                yield i, _normalise(obj)
    elif suffix == ".csv":
        data = path.read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise TableError(f"{path.name}: not UTF-8 (byte {exc.start}); save the table as UTF-8") from exc
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            if None in row:
                yield reader.line_num, BadRow(reader.line_num, "more cells than header columns")
                continue
            yield reader.line_num, _normalise(dict(row))
    elif suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise TableError(f"{path.name}: reading Parquet needs pyarrow: pip install 'p2med[parquet]'") from exc
        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise TableError(f"{path.name}: cannot read Parquet ({exc})") from exc
        for i, row in enumerate(table.to_pylist(), 1):
            yield i, _normalise(row)
    else:
        raise TableError(f"{path.name}: unknown table format (use .jsonl, .csv or .parquet)")


@dataclass
class Export:
    """An export folder: its ``export.json`` and where each table lives. Reads lazily."""

    root: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, root: str | os.PathLike) -> "Export":
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"export folder {root} does not exist")
        meta: dict[str, Any] = {}
        meta_path = root / EXPORT_JSON
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise TableError(f"{EXPORT_JSON}: cannot parse ({exc})") from exc
            if not isinstance(meta, dict):
                raise TableError(f"{EXPORT_JSON}: the top level must be a JSON object")
        return cls(root, meta)

    @property
    def variants(self) -> dict[str, Variant]:
        raw = self.meta.get("variants") or {}
        return {name: Variant.from_json(name, spec) for name, spec in raw.items()}

    def table_path(self, table: str) -> Path | None:
        found = find_table(self.root, table)
        return found[0] if found else None

    def rows(self, table: str) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
        path = self.table_path(table)
        if path is None:
            return iter(())
        return read_rows(path)

    def load(self, table: str) -> list[dict[str, Any]]:
        """All well-formed rows of a table (bad lines are skipped; ``p2med validate`` reports them)."""
        return [row for _, row in self.rows(table) if not isinstance(row, BadRow)]


def write_export(root: str | os.PathLike, tables: dict[str, list[dict[str, Any]]], *, name: str,
                 source: str, variants: dict[str, Variant] | None = None, notes: str = "") -> None:
    """Write ``export.json`` and each table as JSONL (rows in the order given: keep it deterministic)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for table, rows in tables.items():
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; tables are {TABLES}")
        write_jsonl(root / f"{table}.jsonl", rows)
    write_json(root / EXPORT_JSON, {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "name": name, "source": source, "notes": notes,
        "variants": {k: v.to_json() for k, v in sorted((variants or {}).items())},
    })
