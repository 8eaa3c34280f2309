"""``p2med deid --verify SOURCE DEID_EXPORT``: search every output file for every identifier of the source and
every identifier pattern; count hits by kind; any hit fails.

Identifiers of the source: the identifying columns and ids of its tables, every value its DICOM headers carry
that the profile removes or replaces (names in all their forms, ids, UIDs, addresses, private values), and
long path components (exam folders, SOPInstanceUID file names). Searched in: every DICOM element of every
output file but the pixel data (and the preamble), every field of the output tables, every other output file
(ledger, manifest, export.json), the text metadata of PNG/JPEG and the header of NIfTI files. Patterns:
身份证 numbers with a valid check character, phones, e-mail, labelled record numbers, context-shown names.
With the key, each patient's source birth date is also searched in that patient's output (without the key
the output cannot be tied to a source patient, and dates are reported as not checked), and a two-character
Chinese name found outside its own patient's output is a possible collision, listed for review but not a leak:
in thousands of patients some name is also a bigram of report text (叶可 in 右肺上叶可见). Hits name the kind
and the place, never the value. Example: ``verify(Path("runs/h"), Path("runs/h-deid")).ok``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from ..common.optional import require
from ..export.schema import IDENTIFYING_FIELDS, TABLES
from ..export.tables import BadRow, Export, find_table
from . import patterns as P
from .keys import DeidKey
from .profile import identifying_values, load_profile
from .text import context_names

ID_COLUMNS = ("patient_id", "visit_id", "exam_id", "record_id")
PATTERN_KINDS = ("pattern:id_number", "pattern:mobile", "pattern:landline", "pattern:labelled_phone",
                 "pattern:email", "pattern:labelled_record_no", "pattern:context_name")
MAX_LISTED = 20


@dataclass
class VerifyReport:
    identifiers: Counter = field(default_factory=Counter)   # identifiers of the source searched, by kind
    hits: Counter = field(default_factory=Counter)          # leaks found, by kind
    where: list[str] = field(default_factory=list)          # "kind at place" of the first hits (no values)
    scanned: Counter = field(default_factory=Counter)
    dicom_checks: Counter = field(default_factory=Counter)  # structural failures of output DICOM files
    dates_checked: bool = False
    collisions: Counter = field(default_factory=Counter)    # two-character names outside their patient, by kind
    collision_where: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not sum(self.hits.values()) and not sum(self.dicom_checks.values())

    def merge(self, other: "VerifyReport") -> None:
        self.hits.update(other.hits)
        self.scanned.update(other.scanned)
        self.collisions.update(other.collisions)
        self.collision_where += other.collision_where[:max(0, MAX_LISTED - len(self.collision_where))]
        self.dicom_checks.update(other.dicom_checks)
        self.where += other.where[:max(0, MAX_LISTED - len(self.where))]

    def hit(self, kind: str, where: str) -> None:
        self.hits[kind] += 1
        if len(self.where) < MAX_LISTED:
            self.where.append(f"{kind} at {where}")

    def collision(self, kind: str, where: str) -> None:
        self.collisions[kind] += 1
        if len(self.collision_where) < MAX_LISTED:
            self.collision_where.append(f"{kind} at {where}")


def _needles(value: str, kind: str) -> list[tuple[str, str]]:
    """A source value and the forms it may take in text (a PN's components joined, with spaces)."""
    value = value.strip()
    forms = {value}
    if kind in ("person", "name", "guardian_names"):
        for group in value.split("="):
            parts = [p for p in group.split("^") if p.strip()]
            forms |= {group, "".join(parts), " ".join(parts)}
    if kind in ("phone", "id_number", "medical_record_numbers"):
        forms.add(re.sub(r"[\s\-()]", "", value))
    out = []
    for f in forms:
        f = f.strip()
        cjk = any(P.is_han(c) for c in f)
        if len(f) >= (2 if cjk else 4):
            out.append((f, kind))
    return out


NAME_KINDS = ("name", "person", "guardian_names")


def short_name(value: str, kind: str) -> bool:
    """A two-character Chinese name (surname + one character): often also a bigram of ordinary text."""
    return kind in NAME_KINDS and len(value) == 2 and all(P.is_han(c) for c in value)


class SourceIdentifiers(NamedTuple):
    needles: dict[str, str]              # identifier -> kind
    births: dict[str, set[str]]          # source patient id -> their birth date in text forms
    owners: dict[str, set[str]]          # two-character name -> the source patients it belongs to


def source_identifiers(src: Path, workers: int = 2) -> SourceIdentifiers:
    """Every identifier of the source export, its patients' birth dates and whose the short names are."""
    export = Export.open(src)
    found: dict[str, str] = {}
    births: dict[str, set[str]] = {}
    owners: dict[str, set[str]] = {}

    def add(value, kind: str, patient: str = "") -> None:
        for v, k in _needles(str(value), kind):
            found.setdefault(v, k)
            if short_name(v, k) and patient:
                owners.setdefault(v, set()).add(patient)

    rows = {t: [r for _, r in export.rows(t) if not isinstance(r, BadRow)] for t in TABLES}
    for table in TABLES:
        for r in rows[table]:
            for col in ID_COLUMNS:
                if r.get(col):
                    add(r[col], col)
            if table == "patients":
                for col in IDENTIFYING_FIELDS:
                    for v in str(r.get(col) or "").split("|"):
                        if v.strip():
                            add(v, col, str(r.get("patient_id") or ""))
                if r.get("birth_date") and r.get("patient_id"):
                    births.setdefault(str(r["patient_id"]), set()).update(_date_forms(str(r["birth_date"])))
    root = src.resolve()
    items = []
    for r in rows["exams"]:
        for entry in r.get("files") or []:
            path = (root / str(entry)).resolve()
            if root not in path.parents or not path.exists():
                continue
            for f in ([path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())):
                for part in PurePosixPath(f.relative_to(root).as_posix()).parts:
                    part = re.sub(r"\.(dcm|dicom|ima|png|jpe?g|nii(\.gz)?)$", "", part, flags=re.I)
                    if len(part) >= 10:
                        add(part, "path")
                items.append((f, str(r.get("patient_id") or "")))
    for (values, birth), (_, pid) in zip(_pmap(_header_values, items, workers), items, strict=True):
        for kind, value in values:
            add(value, kind, pid)
        if birth and pid:
            births.setdefault(pid, set()).update(_date_forms(birth))
    return SourceIdentifiers(found, births, owners)


def _header_values(item: tuple[Path, str]) -> tuple[list[tuple[str, str]], str | None]:
    """The identifying values of one source DICOM header and its birth date (worker entry point)."""
    try:
        ds = pydicom.dcmread(item[0], stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError):
        return [], None
    birth = ds.get("PatientBirthDate")
    return list(identifying_values(ds, load_profile())), str(birth) if birth else None


def _date_forms(value: str) -> set[str]:
    digits = re.sub(r"\D", "", value)
    if len(digits) != 8:
        return set()
    y, m, d = digits[:4], digits[4:6], digits[6:]
    return {f"{y}-{m}-{d}", digits, f"{y}/{m}/{d}", f"{y}年{int(m)}月{int(d)}日", f"{y}.{m}.{d}"}


class _Matcher:
    """Aho-Corasick over every identifier; a hit of a value that starts or ends with an ASCII letter or digit
    must not touch another one (so ids inside longer numbers or hex pseudonyms are not hits)."""

    def __init__(self, needles: dict[str, str]) -> None:
        ahocorasick = require("ahocorasick", "dicom")
        self.auto = ahocorasick.Automaton()
        for value, kind in needles.items():
            self.auto.add_word(value, (value, kind))
        if needles:
            self.auto.make_automaton()
        self.empty = not needles

    def find(self, text: str) -> list[tuple[str, str]]:
        """(value, kind) of every identifier in ``text``."""
        if self.empty or not text:
            return []
        found = []
        for end, (value, kind) in self.auto.iter(text):
            start = end - len(value) + 1
            if _alnum(value[0]) and start > 0 and _alnum(text[start - 1]):
                continue
            if _alnum(value[-1]) and end + 1 < len(text) and _alnum(text[end + 1]):
                continue
            found.append((value, kind))
        return found


def _strings(value) -> list[str]:
    """Every key and string value of parsed JSON (numbers left out: a count equal to a short source id, e.g. a
    5-digit StudyID, is a coincidence, seen on a 700-patient hospital)."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in [str(k), *_strings(v)]]
    if isinstance(value, list):
        return [t for v in value for t in _strings(v)]
    return [value] if isinstance(value, str) else []


def _alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def pattern_hits(text: str) -> list[str]:
    """Kinds of identifier patterns found in ``text`` (on its normalised form)."""
    norm, _ = P.normalise(text)
    kinds = ["pattern:id_number"] * len(P.ID_NUMBER.findall(norm))       # checksum right or not
    kinds += ["pattern:mobile"] * len(P.MOBILE.findall(norm))
    kinds += ["pattern:landline"] * len(P.LANDLINE.findall(norm))
    kinds += ["pattern:labelled_phone" for m in P.PHONE_LABELLED.finditer(norm)
              if sum(c.isdigit() for c in m.group(1)) >= 7]
    kinds += ["pattern:email"] * len(P.EMAIL.findall(norm))
    kinds += ["pattern:labelled_record_no"] * len(P.RECORD_LABELLED.findall(norm))
    kinds += ["pattern:context_name"] * len(context_names(norm))
    return kinds


class _Scanner:
    """Scans texts for the source's identifiers, the patterns and (with the key) each patient's birth dates."""

    def __init__(self, needles: dict[str, str], births: dict[str, set[str]],
                 owners: dict[str, set[str]] | None = None) -> None:
        self.matcher = _Matcher(needles)
        self.births = births           # output patient pseudonym -> the source birth date's text forms
        self.owners = owners           # two-character name -> output pseudonyms of its patients (with the key)

    def scan(self, report: VerifyReport, text: str, where: str, patient: str | None = None) -> None:
        for value, kind in self.matcher.find(text):
            if self.owners is not None and value in self.owners and patient not in self.owners[value]:
                report.collision(kind, where)      # another patient's text: 上叶可见 holds the name 叶可
            else:
                report.hit(kind, where)
        for kind in pattern_hits(text):
            report.hit(kind, where)
        for date in self.births.get(patient or "", ()):
            if date in text:
                report.hit("birth_date", where)

    def file(self, args: tuple[Path, str]) -> VerifyReport:
        """Scan one output file (worker entry point)."""
        path, rel = args
        report = VerifyReport()
        name = path.name.lower()
        if name.endswith(".dcm"):
            self._dicom(path, rel, report)
        elif name.endswith((".png", ".jpg", ".jpeg")):
            Image = require("PIL.Image", "dicom")
            with Image.open(path) as im:
                self.scan(report, " ".join(f"{k}={v}" for k, v in im.info.items() if isinstance(v, (str, bytes))),
                          rel)
            report.scanned["image_metadata"] += 1
        elif name.endswith((".nii", ".nii.gz")):
            header = require("nibabel", "dicom").load(path).header
            self.scan(report, " ".join(str(header[k]) for k in ("descrip", "aux_file", "intent_name")
                                       if k in header), rel)
            report.scanned["nifti_headers"] += 1
        elif name == "manifest.json":       # our own: its counts and byte sizes are not data, its strings may be
            self.scan(report, "\x00".join(_strings(json.loads(path.read_text(encoding="utf-8")))), rel)
            report.scanned["other_files"] += 1
        else:
            self.scan(report, path.read_bytes().decode("utf-8", errors="replace"), rel)
            report.scanned["other_files"] += 1
        return report

    def table(self, path: Path, rel: str, report: VerifyReport) -> None:
        for line, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not raw.strip():
                continue
            row = json.loads(raw)
            report.scanned["table_rows"] += 1
            for fld, value in row.items():
                if value is None:
                    continue
                text = " ".join(map(str, value)) if isinstance(value, list) else str(value)
                self.scan(report, text, f"{rel}:{line}:{fld}", row.get("patient_id"))
                report.scanned["table_fields"] += 1

    def _dicom(self, path: Path, rel: str, report: VerifyReport) -> None:
        with open(path, "rb") as fh:
            if fh.read(128).strip(b"\x00"):
                report.dicom_checks["preamble_not_empty"] += 1
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        report.scanned["dicom_files"] += 1
        patient = str(ds.get("PatientID", ""))
        if str(ds.get("PatientIdentityRemoved", "")) != "YES":
            report.dicom_checks["patient_identity_removed_missing"] += 1
        if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
            report.dicom_checks["burned_in_annotation_yes"] += 1
        texts = []
        for elem in _walk(ds.file_meta) + _walk(ds):
            if elem.tag.is_private:
                report.dicom_checks["private_tags"] += 1
            if elem.VR in CLOCK_AND_NUMBER_VRS:
                continue   # a time or a measurement equal to a short source id is a coincidence, not a leak
            value = elem.value
            if isinstance(value, bytes):
                text = value.decode("utf-8", errors="replace")
            elif isinstance(value, (list, tuple, MultiValue)):
                text = "\\".join(map(str, value))
            else:
                text = str(value)
            texts.append((elem.tag, text))
        report.scanned["dicom_elements"] += len(texts)
        probe = VerifyReport()     # the whole header at once; element by element only to say where a hit is
        self.scan(probe, "\x00".join(t for _, t in texts), rel, patient)
        if probe.hits or probe.collisions:
            for tag, text in texts:
                self.scan(report, text, f"{rel} {tag}", patient)


_SCANNER: _Scanner | None = None


def _scan_file(args: tuple[Path, str]) -> VerifyReport:
    assert _SCANNER is not None
    return _SCANNER.file(args)


def _pmap(fn, items: list, workers: int):
    """``map`` over worker processes (forked, so they share the parent's scanner)."""
    if workers <= 1 or len(items) < 2 or os.name != "posix":
        return map(fn, items)
    pool = mp.get_context("fork").Pool(workers)
    try:
        return list(pool.imap(fn, items, chunksize=16))
    finally:
        pool.close()
        pool.join()


def verify(src: Path, out: Path, key: DeidKey | None = None, workers: int = 2) -> VerifyReport:
    global _SCANNER
    src, out = Path(src), Path(out)
    report = VerifyReport()
    needles, births, owners = source_identifiers(src, workers)
    report.identifiers.update(needles.values())
    by_pseudonym = {key.pseudonym("patient", pid): dates for pid, dates in births.items()} if key else {}
    report.dates_checked = key is not None
    owned = {name: {key.pseudonym("patient", pid) for pid in pids} for name, pids in owners.items()} if key else None
    _SCANNER = _Scanner(needles, by_pseudonym, owned)
    tables = {p.name for t in TABLES for p in find_table(out, t)}
    files = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        if path.name in tables:
            _SCANNER.table(path, rel, report)
        else:
            files.append((path, rel))
    for part in _pmap(_scan_file, files, workers):
        report.merge(part)
    return report


# times and numeric values: a source StudyID "192000" (the accession's tail) matched every StudyTime 19:20:00
CLOCK_AND_NUMBER_VRS = ("TM", "IS", "DS", "US", "SS", "UL", "SL", "UV", "SV", "FL", "FD")


def _walk(ds) -> list:
    out = []
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value or ():
                out += _walk(item)
        else:
            out.append(elem)
    return out


def format_report(report: VerifyReport, as_json: bool = False) -> str:
    if as_json:
        return json.dumps({"ok": report.ok, "hits": dict(report.hits), "where": report.where,
                           "identifiers": dict(report.identifiers), "scanned": dict(report.scanned),
                           "dicom_checks": dict(report.dicom_checks), "dates_checked": report.dates_checked,
                           "collisions": dict(report.collisions), "collision_where": report.collision_where},
                          ensure_ascii=False, sort_keys=True)
    kinds = sorted(set(report.identifiers) | set(PATTERN_KINDS) | {"birth_date"} | set(report.hits))
    lines = [f"searched for {sum(report.identifiers.values())} identifiers of the source ("
             + ", ".join(f"{k} {v}" for k, v in sorted(report.identifiers.items())) + ") and "
             f"{len(PATTERN_KINDS)} patterns",
             "scanned: " + ", ".join(f"{k} {v}" for k, v in sorted(report.scanned.items())),
             "DICOM checks failed: " + (", ".join(f"{k} {v}" for k, v in sorted(report.dicom_checks.items()))
                                        or "none (no private tags, PatientIdentityRemoved YES, no burned-in YES)"),
             "birth dates: " + ("checked per patient (key given)" if report.dates_checked
                                else "not checked (pass --key-file to tie outputs to source patients)"),
             "hits by kind:"]
    lines += [f"  {k} {report.hits.get(k, 0)}" for k in kinds]
    lines += [f"  leak: {w}" for w in report.where]
    if report.collisions:
        lines.append(f"possible collisions, not counted as leaks (a two-character name found in another patient's "
                     f"output; review): {sum(report.collisions.values())}")
        lines += [f"  collision: {w}" for w in report.collision_where]
    total = sum(report.hits.values())
    lines.append(f"result: {total} leak(s) -> " + ("OK" if report.ok else "FAILED"))
    return "\n".join(lines)
