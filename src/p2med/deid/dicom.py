"""De-identify one image file of an export: a DICOM file through the profile, a PNG/JPEG re-encoded without
its metadata, a NIfTI file with its free-text header fields cleared. Runs in worker processes.

A DICOM file with BurnedInAnnotation = YES, a DICOMDIR, or a file that cannot be read is not written; the
caller quarantines or excludes it with the returned reason. A CR/DX (and other projection) image with
text-like marks near its edges is written and flagged for review (or quarantined, by config). Returned
``identifiers`` are the header's identifying values: the caller scrubs the patient's texts with them; they
are never logged or written. Example: ``process_file(job)`` -> ``FileResult(status="used", ...)``.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError

from ..common.atomic import atomic_open, write_bytes
from .burned_in import CHECKED_MODALITIES, BurnedInConfig, display_image, find_text_marks
from .keys import DeidKey
from .profile import DicomContext, apply_profile, identifying_values, load_profile, mark_deidentified
from .text import KnownIdentifiers, Scrubber, has_cjk

IMPLEMENTATION_UID = "2.25.181577302232651914296307787232963154739"   # P2Med deid (UUID-derived, fixed)
DICOMDIR_SOP = "1.2.840.10008.1.3.10"
RASTER_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True)
class PatientContext:
    """What every file and text of one patient shares (picklable, sent to workers)."""

    pseudonym: str
    shift_days: int
    known: KnownIdentifiers


@dataclass(frozen=True)
class FileJob:
    source: str                 # absolute path of the source file (never logged)
    out_rel: str                # pseudonymous path relative to the output export
    patient: PatientContext
    ref_date: dt.date | None    # the exam's date, for dates written without a year
    headers_only: bool = False  # resumed run: the output exists; only collect the header's identifiers


@dataclass
class FileResult:
    out_rel: str
    status: str                         # used | quarantined | excluded
    code: str | None = None
    text: str | None = None
    review: str | None = None           # "burned_in_suspect: ..." when flagged for review
    box: tuple[int, int, int, int] | None = None
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def journal(self) -> dict:
        """The part of the result a resumed run needs (no identifiers)."""
        return {"out_rel": self.out_rel, "status": self.status, "code": self.code, "text": self.text,
                "review": self.review, "box": list(self.box) if self.box else None, "counts": self.counts}


@dataclass(frozen=True)
class WorkerSetup:
    key: DeidKey
    out_root: str
    burned_in: BurnedInConfig
    suspect_burned_in: str      # flag | quarantine


_SETUP: WorkerSetup | None = None


def init_worker(setup: WorkerSetup) -> None:
    global _SETUP
    _SETUP = setup


def output_suffix(path: Path) -> str:
    """The output file's suffix: .dcm for DICOM (whatever the source name), else the source's own."""
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    with open(path, "rb") as fh:
        head = fh.read(132)
    if head[128:132] == b"DICM":
        return ".dcm"
    suffix = path.suffix.lower()
    return suffix if suffix in RASTER_SUFFIXES or suffix == ".nii" else ".dcm"


def process_file(job: FileJob) -> FileResult:
    """De-identify one file (worker entry point); never raises for a bad file."""
    assert _SETUP is not None, "init_worker was not called"
    try:
        if job.headers_only and not job.out_rel.endswith(".dcm"):
            return FileResult(job.out_rel, "used")
        if job.out_rel.endswith(".dcm"):
            return _dicom(job, _SETUP)
        if job.out_rel.endswith(NIFTI_SUFFIXES):
            return _nifti(job, _SETUP)
        return _raster(job, _SETUP)
    except Exception as exc:  # a damaged file must not stop the run; its reason names no identifier
        return FileResult(job.out_rel, "quarantined", "unprocessable",
                          f"{type(exc).__name__} while de-identifying; the file was not written")


def _read_dicom(path: str) -> Dataset | None:
    try:
        return pydicom.dcmread(path)
    except InvalidDicomError:
        ds = pydicom.dcmread(path, force=True)      # a Part 10 file without preamble or meta
        return ds if "SOPClassUID" in ds else None


def _dicom(job: FileJob, setup: WorkerSetup) -> FileResult:
    ds = _read_dicom(job.source)
    if ds is None:
        return FileResult(job.out_rel, "quarantined", "unreadable", "not a DICOM file and not a known image format")
    profile = load_profile()
    found = list(identifying_values(ds, profile))
    result = FileResult(job.out_rel, "used", identifiers=found)
    if job.headers_only:
        return result
    if str(ds.get("SOPClassUID", "")) == DICOMDIR_SOP:
        return FileResult(job.out_rel, "excluded", "dicomdir", "a DICOMDIR indexes files, it is not an image")
    problem = _pixel_problem(ds)
    if problem:
        return FileResult(job.out_rel, "quarantined", "no_image", problem, identifiers=found)
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        return FileResult(job.out_rel, "quarantined", "burned_in_annotation",
                          "BurnedInAnnotation is YES: identifying text is in the pixels", identifiers=found)
    if str(ds.get("Modality", "")).upper() in CHECKED_MODALITIES and "PixelData" in ds:
        result.box = find_text_marks(display_image(ds), setup.burned_in)
        if result.box is not None:
            text = f"text-like marks near the image edge at rows {result.box[0]}-{result.box[1]}, " \
                   f"columns {result.box[2]}-{result.box[3]}"
            if setup.suspect_burned_in == "quarantine":
                return FileResult(job.out_rel, "quarantined", "burned_in_suspect", text, result.box, found)
            result.review = f"burned_in_suspect: {text}"

    scrubber = Scrubber(_with_header(job.patient.known, found), job.patient.shift_days)
    study_date = ds.get("StudyDate")
    ref = _da(str(study_date)) if study_date else job.ref_date

    def scrub(value: str) -> str:
        return scrubber.scrub(value, "zh" if has_cjk(value) else "en", ref)[0] or ""

    ctx = DicomContext(job.patient.pseudonym, job.patient.shift_days, setup.key.uid, scrub)
    syntax = ds.file_meta.TransferSyntaxUID if "TransferSyntaxUID" in getattr(ds, "file_meta", Dataset()) \
        else pydicom.uid.ExplicitVRLittleEndian
    apply_profile(ds, profile, ctx)
    mark_deidentified(ds)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    meta.ImplementationVersionName = "P2MED_DEID"
    ds.file_meta = meta
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True, implicit_vr=syntax.is_implicit_VR,
               little_endian=syntax.is_little_endian)
    write_bytes(Path(setup.out_root) / job.out_rel, buf.getvalue())
    result.counts = dict(ctx.counts, dropped_dates=ctx.dropped_dates)
    return result


def _pixel_problem(ds: Dataset) -> str | None:
    """Why the file holds no usable image (missing or truncated pixel data), or None."""
    if "PixelData" not in ds:
        return "the file has no pixel data (truncated, or not an image object)"
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and syntax.is_compressed:
        return None
    try:
        need = (int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
                * int(ds.get("NumberOfFrames", 1) or 1) * int(ds.BitsAllocated) + 7) // 8
    except (AttributeError, TypeError, ValueError):
        return "the image attributes (Rows, Columns, BitsAllocated) are missing or invalid"
    if len(ds.PixelData) < need:
        return f"the pixel data is truncated ({len(ds.PixelData)} of {need} bytes)"
    return None


def _with_header(known: KnownIdentifiers, found: list[tuple[str, str]]) -> KnownIdentifiers:
    """The patient's known identifiers plus the values this header carries."""
    merged = KnownIdentifiers()
    merged.merge(known)
    add_header_values(merged, found)
    return merged


def add_header_values(known: KnownIdentifiers, found: list[tuple[str, str]]) -> None:
    for kind, value in found:
        if kind == "person":
            known.add_person(value)
        elif kind in ("number", "phone"):
            known.add_number(value, "phone" if kind == "phone" else "record_no")
        elif kind == "address":
            known.add_address(value)
        elif kind in ("private", "other"):
            known.add_other(value)


def _da(value: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(value.strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _raster(job: FileJob, setup: WorkerSetup) -> FileResult:
    """PNG / JPEG: decode and re-encode the pixels only (text chunks, EXIF and comments are dropped)."""
    from ..common.optional import require
    Image = require("PIL.Image", "dicom")
    import numpy as np

    with Image.open(job.source) as im:
        im.load()
        clean = im.copy()
    clean.info = {}     # no text chunks, EXIF, ICC profile or comments go back out
    result = FileResult(job.out_rel, "used")
    gray = np.asarray(clean.convert("L"), dtype=np.float32) / 255.0
    result.box = find_text_marks(gray, setup.burned_in)
    if result.box is not None:
        result.review = "burned_in_suspect: text-like marks near the image edge"
        if setup.suspect_burned_in == "quarantine":
            return FileResult(job.out_rel, "quarantined", "burned_in_suspect", "text-like marks near the image edge")
    fmt = RASTER_SUFFIXES[Path(job.out_rel).suffix.lower()]
    with atomic_open(Path(setup.out_root) / job.out_rel, "wb") as fh:
        clean.save(fh, format=fmt)
    return result


def _nifti(job: FileJob, setup: WorkerSetup) -> FileResult:
    """NIfTI: the same voxels and affine, with the free-text header fields (descrip, aux_file, ...) cleared."""
    from ..common.optional import require
    nib = require("nibabel", "dicom")

    img = nib.load(job.source)
    header = img.header.copy()
    for name in ("descrip", "aux_file", "intent_name", "db_name"):
        if name in header:
            header[name] = b""
    out = Path(setup.out_root) / job.out_rel
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".partial-{os.getpid()}-{out.name}")
    nib.save(type(img)(img.dataobj, img.affine, header), str(tmp))
    os.replace(tmp, out)
    return FileResult(job.out_rel, "used")
