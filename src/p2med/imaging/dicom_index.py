"""Index the files of one exam: what each file is, its DICOM header, its series - and its fate in the ledger.

Every file is sniffed once: DICOM (header read by ``dicom_header``), NIfTI, PNG/JPEG, or not an image. Damaged
files are quarantined here with their reason; DICOM objects without pixels (reports, structured reports,
presentation states) and second copies of one SOPInstanceUID are excluded. Later steps (``ct_series``, ``xray``)
mark the rest used or excluded; every file ends with exactly one outcome. It knows nothing about exports:
files are named by the caller (relative paths in an export, upload names on the server).
Example: ``idx = index_files(["/data/a/1.dcm"], ["a/1.dcm"])`` -> ``idx.dicom["a/1.dcm"].series_uid``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from .dicom_header import BadFile, DicomHeader, read_header
from .other_formats import sniff

T = TypeVar("T")
MAX_SIDE = 16384          # pixels; larger images are not chest radiographs or CT slices
XR_MODALITIES = {"CR", "DX", "DR", "RG", "XR", "OT", "SC", "PX"}
CT_MODALITIES = {"CT"}


@dataclass
class Outcome:
    status: str              # used | excluded | quarantined
    code: str | None = None  # ledger reason code (None when used)
    text: str | None = None


@dataclass
class ExamIndex:
    """The files of one exam by kind, and the ledger outcome of each (set exactly once)."""

    paths: dict[str, str] = field(default_factory=dict)             # name -> path on disk
    dicom: dict[str, DicomHeader] = field(default_factory=dict)      # DICOM files with pixels
    rasters: list[str] = field(default_factory=list)                 # PNG / JPEG
    niftis: list[str] = field(default_factory=list)
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def use(self, name: str) -> None:
        self._set(name, Outcome("used"))

    def exclude(self, name: str, code: str, text: str) -> None:
        self._set(name, Outcome("excluded", code, text))

    def quarantine(self, name: str, code: str, text: str) -> None:
        self._set(name, Outcome("quarantined", code, text))

    def _set(self, name: str, outcome: Outcome) -> None:
        if name in self.outcomes:
            raise RuntimeError(f"file {name} was given two outcomes ({self.outcomes[name].status}, {outcome.status})")
        self.outcomes[name] = outcome

    def read(self, name: str, reader: Callable[[str], T]) -> T | None:
        """``reader(path)`` of the file, or None after quarantining it with the ``BadFile`` reason."""
        try:
            return reader(self.paths[name])
        except BadFile as exc:
            self.quarantine(name, exc.code, exc.text)
            return None

    def pending(self, names) -> list[str]:
        return [n for n in names if n not in self.outcomes]

    def by_series(self, modalities: set[str] | None) -> dict[str, list[str]]:
        """DICOM files without an outcome yet, grouped by SeriesInstanceUID (modality filter optional)."""
        groups: dict[str, list[str]] = defaultdict(list)
        for name, h in self.dicom.items():
            if name in self.outcomes or (modalities is not None and (h.modality or "").upper() not in modalities):
                continue
            groups[h.series_uid or f"(no series uid: {h.study_uid or ''} #{h.series_number})"].append(name)
        return dict(groups)

    def finish(self, code: str, text: str) -> None:
        """Exclude every file that still has no outcome (e.g. the other modality's files)."""
        for name in self.pending(self.paths):
            self.exclude(name, code, text)


def index_files(paths: list[str | os.PathLike], names: list[str] | None = None) -> ExamIndex:
    """Sniff and read the headers of ``paths`` (named ``names``, default the paths as given)."""
    paths = [os.fspath(p) for p in paths]
    names = list(paths) if names is None else list(names)
    if len(names) != len(paths):
        raise ValueError("names and paths must have the same length")
    idx = ExamIndex()
    seen_sop: dict[str, str] = {}
    for name, path in sorted(zip(names, paths), key=lambda np_: np_[0]):
        if name in idx.paths:
            continue
        idx.paths[name] = path
        try:
            header = read_header(path)
        except BadFile as exc:
            idx.quarantine(name, exc.code, exc.text)
            continue
        if header is None:
            _other(idx, name, path)
            continue
        problem = _header_problem(header)
        if problem:
            status, code, text = problem
            (idx.quarantine if status == "quarantined" else idx.exclude)(name, code, text)
            continue
        if header.sop_uid and header.sop_uid in seen_sop:
            idx.exclude(name, "duplicate_instance", f"a second copy of the image in {seen_sop[header.sop_uid]} "
                                                    "(same SOPInstanceUID)")
            continue
        if header.sop_uid:
            seen_sop[header.sop_uid] = name
        idx.dicom[name] = header
    return idx


def _other(idx: ExamIndex, name: str, path: str) -> None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(352)
    except OSError as exc:
        idx.quarantine(name, "unreadable", f"cannot open the file ({exc.strerror})")
        return
    kind = sniff(path, head)
    if kind in ("png", "jpeg"):
        idx.rasters.append(name)
    elif kind == "nifti":
        idx.niftis.append(name)
    elif not head:
        idx.quarantine(name, "empty", "the file is empty")
    else:
        idx.exclude(name, "not_image", "neither DICOM, NIfTI, PNG nor JPEG")


def _header_problem(h: DicomHeader) -> tuple[str, str, str] | None:
    """(status, code, text) when a readable DICOM file cannot be an image for the model."""
    if not h.has_pixels:
        if h.rows or h.cols or h.bits_allocated or h.is_image_class:
            return "quarantined", "no_pixels", "the header describes an image but has no pixel data (damaged?)"
        kind = f"SOP class {h.sop_class}" if h.sop_class else "no SOP class"
        return "excluded", "no_pixels", f"a DICOM object without an image ({kind})"
    if not h.rows or not h.cols or h.rows < 2 or h.cols < 2:
        return "quarantined", "bad_header", f"Rows/Columns missing or too small ({h.rows}x{h.cols})"
    if max(h.rows, h.cols) > MAX_SIDE:
        return "excluded", "unsupported", f"{h.rows}x{h.cols} pixels: larger than {MAX_SIDE} on a side"
    if h.bits_allocated not in (1, 8, 16, 32, 64):
        return "quarantined", "bad_header", f"BitsAllocated {h.bits_allocated} is not a valid value"
    if h.bits_stored and h.bits_allocated and h.bits_stored > h.bits_allocated:
        return "quarantined", "bad_header", f"BitsStored {h.bits_stored} > BitsAllocated {h.bits_allocated}"
    if h.samples not in (None, 1, 3):
        return "excluded", "unsupported", f"{h.samples} samples per pixel (grey or RGB images only)"
    return None
