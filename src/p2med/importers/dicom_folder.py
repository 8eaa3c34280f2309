"""Any folder of DICOM files (any layout) -> exams grouped by StudyInstanceUID, modality from the headers.

Reads headers only (pydicom, ``stop_before_pixels``). Modality CT -> ``CT``; CR, DX, DR -> ``XR``; anything
else (PT, MR, SR, PR, ...) is excluded with a reason. One exam per study and exam modality; its files are
copied to ``images/<exam_id>/<series key>/0001.dcm ...`` (one folder per series, files in source-path order),
so no UID or patient name appears in an export path. Ids are stable hashes: ``dcm-<16 hex>`` of the study
UID and modality for the exam, ``dcm-p<12 hex>`` of PatientID for the patient (an unkeyed hash is no
de-identification: run ``p2med deid``). Reports are empty (``report_origin: none``), counted in the summary.

A file that is not DICOM (no ``DICM`` preamble and not named like DICOM) is excluded; a file with a DICOM
preamble or a ``.dcm`` name that cannot be parsed, or lacks StudyInstanceUID / Modality, is quarantined.
Messages never hold UIDs, names or other header values except the modality.
Example exam: ``{"exam_id": "dcm-3f2a...", "patient_id": "dcm-p91c0...", "modality": "CT",
"exam_time": "2007-04-04T18:58:24", "files": ["images/dcm-3f2a..."], "report_origin": "none"}``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Iterator

from .readers import Damaged
from .run import ImportRun, stable_id

USES_IMAGES = False
EXAM_MODALITY = {"CT": "CT", "CR": "XR", "DX": "XR", "DR": "XR"}
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
VARIANTS = ()
NOTES = ("Imported from a folder of DICOM files: exams grouped by StudyInstanceUID, no reports "
         "(report_origin none). See docs/importers.md.")


@dataclass(frozen=True)
class Header:
    """What the importer needs from one file's header (kept in memory only, never printed)."""

    study: str
    series: str
    sop: str
    modality: str
    patient: str
    sex: str | None
    birth_date: str | None
    when: str | None


class NotDicom(Damaged):
    """A file that is not DICOM at all (excluded, not quarantined)."""


def _date(value: str) -> str | None:
    value = (value or "").strip()
    try:
        return dt.datetime.strptime(value, "%Y%m%d").date().isoformat() if len(value) == 8 else None
    except ValueError:
        return None


def _datetime(date: str, time: str) -> str | None:
    day = _date(date)
    if day is None:
        return None
    digits = (time or "").strip().split(".")[0]
    if not digits:
        return day  # no time: the date alone (ISO), nothing invented
    if len(digits) < 4 or not digits.isdigit():
        return None
    hh, mm, ss = digits[0:2], digits[2:4], digits[4:6] or "00"
    try:
        return dt.datetime.fromisoformat(f"{day}T{hh}:{mm}:{ss}").isoformat()
    except ValueError:
        return None


@contextlib.contextmanager
def _quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's warnings and log lines while reading: they quote header values (names, UIDs)."""
    log = logging.getLogger("pydicom")
    disabled = log.disabled
    log.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.disabled = disabled


def read_header(path, rel: str) -> Header | Damaged:
    """The header of one file, or why it is not used (``NotDicom`` for files that are not DICOM)."""
    from pydicom import dcmread

    with open(path, "rb") as fh:
        head = fh.read(132)
    preamble = head[128:132] == b"DICM"
    suffix = PurePosixPath(rel).suffix.lower()
    dicom_name = suffix in DICOM_SUFFIXES
    if not preamble and not dicom_name and suffix:
        return NotDicom("not-dicom", f"a {suffix} file without a DICOM preamble")
    try:
        with _quiet_pydicom():
            ds = dcmread(path, stop_before_pixels=True, force=not preamble)
            sop_class = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "") or "")
            values = {k: str(ds.get(k) or "").strip() for k in (
                "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "Modality", "PatientID", "PatientSex",
                "PatientBirthDate", "StudyDate", "StudyTime", "SeriesDate", "SeriesTime")}
    except Exception as exc:  # pydicom raises many types on damaged files
        if preamble or dicom_name:
            return Damaged("unreadable-dicom", f"cannot parse the DICOM header ({type(exc).__name__})")
        return NotDicom("not-dicom", "no DICOM preamble and no readable DICOM header")
    if sop_class == DICOMDIR_CLASS or PurePosixPath(rel).name.upper() == "DICOMDIR":
        return NotDicom("dicomdir", "a DICOMDIR index, not an image")
    missing = [k for k in ("StudyInstanceUID", "Modality") if not values[k]]
    if missing and not preamble:
        if dicom_name:
            return Damaged("not-dicom", f"named {suffix} but has no DICOM preamble and no DICOM study header")
        return NotDicom("not-dicom", "no DICOM preamble and no DICOM study header")
    if missing:
        return Damaged("missing-tag", f"no {' or '.join(missing)} in the header")
    when = (_datetime(values["StudyDate"], values["StudyTime"])
            or _datetime(values["SeriesDate"], values["SeriesTime"]))
    sex = {"M": "M", "F": "F", "O": "U"}.get(values["PatientSex"].upper())
    return Header(values["StudyInstanceUID"], values["SeriesInstanceUID"], values["SOPInstanceUID"],
                  values["Modality"].upper(), values["PatientID"], sex, _date(values["PatientBirthDate"]), when)


def convert(run: ImportRun) -> None:
    files = run.files()
    exams: dict[tuple[str, str], list[tuple[str, Header]]] = {}
    for rel in run.bar(files, "read DICOM headers"):
        header = read_header(run.src / rel, rel)
        if isinstance(header, NotDicom):
            run.excluded(rel, header.code, header.text, quiet=True)
        elif isinstance(header, Damaged):
            run.quarantined(rel, header.code, header.text)
        elif header.modality not in EXAM_MODALITY:
            run.excluded(rel, "modality", f"modality {header.modality!r} is not imported (CT -> CT; CR, DX, DR -> "
                                          f"XR)", quiet=True)
        else:
            exams.setdefault((header.study, EXAM_MODALITY[header.modality]), []).append((rel, header))

    for (study, modality), members in run.bar(exams.items(), "place exams", total=len(exams)):
        exam_id = stable_id("dcm-", study, modality, length=16)
        first = members[0][1]
        patient_id = stable_id("dcm-p", first.patient or f"study:{study}")
        run.patient(patient_id, sex=first.sex, birth_date=first.birth_date)
        series_index: dict[str, int] = {}
        seen_sop: dict[str, str] = {}
        for rel, header in members:
            if header.sop and header.sop in seen_sop:
                run.excluded(rel, "duplicate-instance", f"the same SOP instance as {seen_sop[header.sop]}")
                continue
            seen_sop[header.sop] = rel
            n = series_index[header.series] = series_index.get(header.series, 0) + 1
            run.place(run.src / rel, f"images/{exam_id}/{stable_id('s', header.series, length=8)}/{n:04d}.dcm")
            run.used(rel, exam_id=exam_id)
        run.exam({"exam_id": exam_id, "patient_id": patient_id, "modality": modality, "exam_time": first.when,
                  "files": [f"images/{exam_id}"], "report_origin": "none"})
