"""The two files every folder-processing command writes (SPEC section 9).

``ledger.jsonl``: one JSON object per input object, ``{"source", "status", "reason", ...}`` with status
``used | excluded | quarantined``; ``reason`` is ``"code: text"`` (required for the last two). Every input object
appears exactly once; a second entry for the same source is a bug and raises.
``manifest.json``: what was produced, with sha256 and size per file, plus the command's parameters and counts.

Example ledger line: ``{"source": "dicom/E0001/1/0001.dcm", "status": "used", "reason": null}``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from .. import __version__
from .errors import P2MedError
from .atomic import sha256_file, write_json, write_jsonl

STATUSES = ("used", "excluded", "quarantined")
MANIFEST = "manifest.json"
LEDGER = "ledger.jsonl"


class LedgerError(P2MedError, ValueError):
    pass


class Ledger:
    """Collects one entry per input object and writes them sorted by source (deterministic)."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}

    def add(self, source: str, status: str, code: str | None = None, text: str | None = None,
            **extra: Any) -> None:
        if status not in STATUSES:
            raise LedgerError(f"ledger status must be one of {STATUSES}, got {status!r} for {source}")
        if status != "used" and not code:
            raise LedgerError(f"ledger entry for {source} is {status} but has no reason code")
        if source in self._rows:
            raise LedgerError(f"input {source} was entered in the ledger twice "
                              f"({self._rows[source]['status']} then {status})")
        reason = None if code is None else (f"{code}: {text}" if text else code)
        self._rows[source] = {"source": source, "status": status, "reason": reason, **extra}

    def used(self, source: str, **extra: Any) -> None:
        self.add(source, "used", **extra)

    def excluded(self, source: str, code: str, text: str, **extra: Any) -> None:
        self.add(source, "excluded", code, text, **extra)

    def quarantined(self, source: str, code: str, text: str, **extra: Any) -> None:
        self.add(source, "quarantined", code, text, **extra)

    def __contains__(self, source: str) -> bool:
        return source in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self) -> list[dict[str, Any]]:
        return [self._rows[k] for k in sorted(self._rows)]

    def counts(self) -> dict[str, int]:
        c = Counter(r["status"] for r in self._rows.values())
        return {s: c.get(s, 0) for s in STATUSES}

    def reason_counts(self) -> dict[str, int]:
        c = Counter(r["reason"].split(":", 1)[0] for r in self._rows.values() if r["reason"])
        return dict(sorted(c.items()))

    def write(self, out_dir: str | os.PathLike) -> Path:
        path = Path(out_dir) / LEDGER
        write_jsonl(path, self.rows())
        return path

    @classmethod
    def read(cls, path: str | os.PathLike) -> "Ledger":
        """Load a ledger written earlier (for resumable commands)."""
        ledger = cls()
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    ledger._rows[row["source"]] = row
        return ledger


def list_files(root: str | os.PathLike, exclude: Iterable[str] = (MANIFEST,)) -> list[str]:
    """Every file under ``root`` as a sorted list of POSIX paths relative to it (temp files skipped)."""
    root = Path(root)
    excluded = set(exclude)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        folder = Path(dirpath).relative_to(root).as_posix()           # once per folder: exports hold 100k files
        prefix = "" if folder == "." else folder + "/"
        for name in filenames:
            if name.endswith(".tmp") and name.startswith("."):
                continue
            rel = prefix + name
            if rel not in excluded:
                out.append(rel)
    return sorted(out)


def write_manifest(out_dir: str | os.PathLike, command: str, params: dict[str, Any] | None = None,
                   counts: dict[str, Any] | None = None, files: Iterable[str] | None = None,
                   **extra: Any) -> dict[str, Any]:
    """Hash every produced file (or the given relative paths) and write ``manifest.json``.

    ``params`` must hold no absolute paths or times: the manifest is part of the deterministic output.
    """
    out_dir = Path(out_dir)
    rels = sorted(files) if files is not None else list_files(out_dir)
    entries = [{"path": rel, "sha256": sha256_file(out_dir / rel), "bytes": (out_dir / rel).stat().st_size}
               for rel in rels]
    manifest = {"p2med_version": __version__, "command": command, "params": params or {},
                "counts": counts or {}, "files": entries, **extra}
    write_json(out_dir / MANIFEST, manifest)
    return manifest


def read_manifest(out_dir: str | os.PathLike) -> dict[str, Any]:
    with open(Path(out_dir) / MANIFEST, encoding="utf-8") as fh:
        return json.load(fh)
