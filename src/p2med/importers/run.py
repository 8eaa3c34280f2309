"""One import: collect the export's rows, place image files, keep the ledger, print one line per problem.

A source module (``imcs21.py``, ``iu_xray.py``, ...) has ``NOTES``, ``VARIANTS``, ``USES_IMAGES`` and
``convert(run)``. ``convert`` reads ``run.src`` (and ``run.images``), adds rows with ``run.patient / visit /
exam / record``, copies files with ``run.place`` and enters every input object it reads in the ledger with
``run.used / excluded / quarantined``. ``import_folder`` then enters every file no reader touched as
``excluded``, writes the export (tables, ``export.json``, ``ledger.jsonl``, ``manifest.json``) into a hidden
``.NAME.partial`` folder, renames it into place and validates it. Knows no dataset's fields.

Ledger sources: a file ``Lung_Dx-A0001/series_2_5mm/1-01.dcm``, a JSONL line ``train.jsonl:17``, a CSV record
``labels.csv:5`` (the line it starts on), a JSON array element ``data.json[3]``; files of the ``--images`` folder
carry the prefix ``images:``. Printed lines show UID-like path parts as ``<UID>``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from tqdm import tqdm

from ..common.errors import P2MedError
from ..common.ledger import Ledger, list_files, write_manifest
from ..export.tables import write_export
from ..export.validate import Report, validate
from . import SOURCES, source_module
from .readers import Damaged, Decoded, read_csv

IMAGES_PREFIX = "images:"
LINK_MODES = ("copy", "hardlink")
_UID_LIKE = re.compile(r"\d+(?:\.\d+){5,}")  # six or more dotted numbers: a DICOM UID, not a date
_OBJECT_SUFFIX = re.compile(r"(?::\d+|\[\d+:?\])$")  # a line / record / array element of a file


def stable_id(prefix: str, *parts: str, length: int = 12) -> str:
    """``prefix`` + the first ``length`` hex digits of sha256 over ``parts``: the same input, the same id."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"{prefix}{digest[:length]}"


def shown(source: str) -> str:
    """A ledger source as printed: UID-like parts (``1.2.840...``) masked, so no UID reaches a log line."""
    return _UID_LIKE.sub("<UID>", source)


@dataclass
class ImportRun:
    """The state of one import; see the module docstring for how a source module uses it."""

    source: str
    src: Path
    out: Path
    images: Path | None = None
    link: str = "copy"
    echo: Callable[[str], None] = print
    max_lines: int = 50
    progress: bool = True
    ledger: Ledger = field(default_factory=Ledger)
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)
    visits: dict[str, dict[str, Any]] = field(default_factory=dict)
    exams: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    read_files: set[str] = field(default_factory=set)  # files whose objects are ledgered one by one
    file_fields: dict[str, dict[str, Any]] = field(default_factory=dict)  # file -> fields of its ledger rows
    quiet: Counter = field(default_factory=Counter)  # expected exclusions, counted instead of printed
    problem_lines: int = 0
    placed: int = 0  # image files put into the export
    _link_failed: bool = False

    # ---- the ledger, with a printed line for every problem -------------------------------------------------
    def used(self, source: str, note: str | None = None, **extra: Any) -> None:
        """An input imported; ``note`` says what was partial about it (printed, and kept in the ledger)."""
        if note:
            self.ledger.used(source, note=note, **self._of_file(source), **extra)
            self._problem(source, "used", note)
        else:
            self.ledger.used(source, **self._of_file(source), **extra)

    def excluded(self, source: str, code: str, text: str, *, quiet: bool = False, **extra: Any) -> None:
        """An input not imported. ``quiet`` for expected exclusions (a duplicate form, a documentation file):
        counted in the summary instead of a line each."""
        self.ledger.excluded(source, code, text, **self._of_file(source), **extra)
        if quiet:
            self.quiet[code] += 1
        else:
            self._problem(source, "excluded", text)

    def quarantined(self, source: str, code: str, text: str, **extra: Any) -> None:
        """A damaged input set aside for a person to look at; always printed."""
        self.ledger.quarantined(source, code, text, **self._of_file(source), **extra)
        self._problem(source, "quarantined", text)

    def _of_file(self, source: str) -> dict[str, Any]:
        """Ledger fields every object of one input file carries (``decoded_as: gbk``): ``file:5`` -> ``file``."""
        file = _OBJECT_SUFFIX.sub("", source)
        return self.file_fields.get(file, {}) if file != source else {}

    def say(self, line: str) -> None:
        """A line about the run itself (a file decoded as GBK, hard links not possible)."""
        self.echo(shown(line))

    def _problem(self, source: str, status: str, text: str) -> None:
        self.problem_lines += 1
        if self.problem_lines <= self.max_lines:
            self.echo(f"{shown(source)}: {shown(text)} -> {status}")

    # ---- inputs --------------------------------------------------------------------------------------------
    def files(self, root: Path | None = None) -> list[str]:
        """Every file under ``root`` (default the source folder), sorted, as POSIX paths relative to it."""
        return list_files(root or self.src, exclude=())

    def mark_read(self, rel: str) -> None:
        """``rel`` (a source-folder file, or ``images:``-prefixed) is ledgered object by object, not as a file."""
        self.read_files.add(rel)

    def csv_rows(self, path: Path, source: str, needed: tuple[str, ...]) -> tuple[list[str], list[tuple[str, dict]]]:
        """Read a CSV input whose ledger name is ``source``: check its columns (``InputError`` naming the file),
        print how it was decoded when not plain UTF-8, quarantine damaged records; returns (header, good rows)."""
        table = read_csv(path, source)
        table.require(source, needed)
        self.decoded(source, table.decoded)
        self.mark_read(source)
        good = []
        for where, row in table.rows:
            if isinstance(row, Damaged):
                self.quarantined(where, row.code, row.text)
            else:
                good.append((where, row))
        return table.header, good

    def decoded(self, source: str, decoded: Decoded) -> None:
        """Say how the input file ``source`` was decoded when it was not plain UTF-8; objects of a file read
        as GBK carry ``decoded_as: gbk`` in the ledger."""
        if decoded.note:
            self.say(decoded.note)
        if decoded.encoding != "utf-8":
            self.file_fields[source] = {"decoded_as": decoded.encoding}

    def bar(self, items: Iterable, desc: str, total: int | None = None) -> Iterable:
        return tqdm(items, desc=desc, total=total, disable=not self.progress, leave=False)

    def account_for_the_rest(self) -> None:
        """Enter every input file that no reader touched as excluded (documentation, checksums, other data)."""
        roots = [(self.src, "")] + ([(self.images, IMAGES_PREFIX)] if self.images else [])
        for root, prefix in roots:
            for rel in self.files(root):
                source = prefix + rel
                if source not in self.read_files and source not in self.ledger:
                    self.excluded(source, "not-input", f"not a file the {self.source} importer reads",
                                  quiet=True)

    # ---- outputs -------------------------------------------------------------------------------------------
    def place(self, src_file: Path, dest_rel: str) -> str:
        """Copy (or hard-link) ``src_file`` to ``dest_rel`` inside the export; returns ``dest_rel``."""
        dest = self.out / dest_rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.placed += 1
        if self.link == "hardlink" and not self._link_failed:
            try:
                os.link(src_file, dest)
                return dest_rel
            except OSError as exc:
                self._link_failed = True
                self.say(f"hard links are not possible here ({exc.strerror}); copying the files instead")
        shutil.copyfile(src_file, dest)
        return dest_rel

    def patient(self, patient_id: str, **fields: Any) -> None:
        """Add a patient once; later calls for the same id fill only fields still empty."""
        row = self.patients.setdefault(patient_id, {"patient_id": patient_id})
        for key, value in fields.items():
            if value is not None and row.get(key) is None:
                row[key] = value

    def visit(self, row: dict[str, Any]) -> None:
        self._add(self.visits, "visit_id", row)

    def exam(self, row: dict[str, Any]) -> None:
        self._add(self.exams, "exam_id", row)

    def record(self, row: dict[str, Any]) -> None:
        self._add(self.records, "record_id", row)

    @staticmethod
    def _add(table: dict[str, dict], key: str, row: dict[str, Any]) -> None:
        if row[key] in table:  # importers derive ids so that this cannot happen: a bug, not a user error
            raise RuntimeError(f"importer produced the {key} {row[key]!r} twice")
        table[row[key]] = {k: v for k, v in row.items() if v is not None}

    def counts(self) -> dict[str, Any]:
        """Summary counts for the manifest and the printed summary."""
        exams = list(self.exams.values())
        with_files = [e for e in exams if e.get("files")]
        with_report = [e for e in exams if e.get("findings") or e.get("impression")]
        records = Counter(r.get("variant") or r["task"] for r in self.records.values())
        return {
            "patients": len(self.patients), "visits": len(self.visits),
            "exams": dict(sorted(Counter(e["modality"] for e in exams).items())),
            "exams_with_images": len(with_files), "exams_text_only": len(exams) - len(with_files),
            "exams_without_report": len(exams) - len(with_report),
            "image_files": self.placed,
            "records": dict(sorted(records.items())),
            "ledger": self.ledger.counts(), "reasons": self.ledger.reason_counts(),
        }


@dataclass
class ImportResult:
    counts: dict[str, Any]
    report: Report
    problem_lines: int
    quiet: dict[str, int]


def import_folder(source: str, src: Path, out: Path, images: Path | None = None, *, link: str = "copy",
                  overwrite: bool = False, echo: Callable[[str], None] = print, max_lines: int = 50,
                  progress: bool = True) -> ImportResult:
    """Convert ``src`` (a folder of dataset ``source``) into the export ``out``; see the module docstring."""
    if source not in SOURCES:
        raise P2MedError(f"unknown source {source!r}; sources: {', '.join(SOURCES)}")
    if link not in LINK_MODES:
        raise P2MedError(f"--link must be one of {', '.join(LINK_MODES)}, got {link!r}")
    module = source_module(source)
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise P2MedError(f"input folder {src} does not exist or is not a folder")
    if images is not None:
        if not module.USES_IMAGES:
            users = [s for s in SOURCES if source_module(s).USES_IMAGES]
            raise P2MedError(f"--images is read only by {', '.join(users)}; {source} takes its images from "
                             f"the input folder")
        images = Path(images)
        if not images.is_dir():
            raise P2MedError(f"--images folder {images} does not exist or is not a folder")
    for root in [src] + ([images] if images else []):
        inner, outer = root.resolve(), out.resolve()
        if outer == inner or inner in outer.parents or outer in inner.parents:
            raise P2MedError(f"--out {out} and the input folder {root} overlap; write the export elsewhere")
    if out.exists() and not out.is_dir():
        raise P2MedError(f"--out {out} is a file, not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise P2MedError(f"{out} exists and is not empty; pass --overwrite to replace it")

    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    run = ImportRun(source, src, tmp, images, link, echo, max_lines, progress)
    try:
        module.convert(run)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    run.account_for_the_rest()
    tables = {"patients": list(run.patients.values()), "exams": list(run.exams.values()),
              "records": list(run.records.values())}
    if run.visits:
        tables["visits"] = list(run.visits.values())
    write_export(tmp, {k: v for k, v in tables.items() if v or k == "patients"}, name=f"{source}-{src.name}",
                 source=f"p2med import {source}", variants={v.name: v for v in module.VARIANTS},
                 notes=module.NOTES)
    run.ledger.write(tmp)
    counts = run.counts()
    params = {"source": source, "src": src.name, "images": images.name if images else None, "link": link}
    write_manifest(tmp, "import", params, counts)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    if run.problem_lines > max_lines:
        echo(f"... {run.problem_lines - max_lines} more problem line(s) not shown: see {out / 'ledger.jsonl'}")
    return ImportResult(counts, validate(out), run.problem_lines, dict(sorted(run.quiet.items())))
