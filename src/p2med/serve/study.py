"""An uploaded or pulled study -> the model's images, through the same ingestion code as training.

The files are written under neutral names (``file-0001``) into a temporary folder and handed to
``p2med.imaging.ingest.ingest_files`` (view / series choice, windowing, 336 x 336), so no file name a user
chose reaches a log or an error. From the DICOM headers it keeps only what prompts and priors need: the exam
date, the child's age in days and keyed hashes of the study UID and patient id. It does not know the store or
HTTP. Example: ``info, images = ingest_study([("a.dcm", data)], hash_id=store.hash_id)`` ->
``({"modality": "XR", "exam_date": "2022-05-15", "age_days": 1890, ...}, [(entry, float32 [1, 336, 336])])``.
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pydicom

from ..common.errors import P2MedError
from ..imaging.config import IngestConfig
from ..imaging.ingest import ingest_files


def _date(value: object) -> dt.date | None:
    try:
        return dt.datetime.strptime(str(value or "")[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _age_days(ds: pydicom.Dataset, when: dt.date | None) -> int | None:
    birth = _date(ds.get("PatientBirthDate"))
    if birth and when:
        return (when - birth).days
    age = str(ds.get("PatientAge") or "")             # e.g. 005Y, 030M, 014D
    if len(age) == 4 and age[:3].isdigit():
        return int(age[:3]) * {"D": 1, "W": 7, "M": 30, "Y": 365}.get(age[3], 0) or None
    return None


def header_info(files: list[bytes], hash_id: Callable[[str], str]) -> dict:
    """Exam date, age and hashed identifiers from the first readable DICOM header; one study per upload."""
    studies, first = set(), None
    for data in files:
        try:
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not DICOM (a PNG, or damaged): ingestion says what it is
            continue
        if ds.get("StudyInstanceUID"):
            studies.add(str(ds.StudyInstanceUID))
        first = first or ds
    if len(studies) > 1:
        raise P2MedError(f"the upload holds files of {len(studies)} different studies; upload one study at a time")
    if first is None:
        return {"exam_date": "", "age_days": None, "uid_hash": None, "patient_hash": None}
    when = _date(first.get("StudyDate") or first.get("AcquisitionDate") or first.get("SeriesDate"))
    return {"exam_date": when.isoformat() if when else "", "age_days": _age_days(first, when),
            "uid_hash": hash_id(str(first.StudyInstanceUID)) if first.get("StudyInstanceUID") else None,
            "patient_hash": hash_id(str(first.PatientID)) if first.get("PatientID") else None}


def ingest_study(files: list[bytes], hash_id: Callable[[str], str], cfg: IngestConfig | None = None
                 ) -> tuple[dict, list[tuple[dict, np.ndarray]]]:
    """(info, [(entry, float32 [S, 336, 336])]); no usable image is a P2MedError saying why per file."""
    if not files:
        raise P2MedError("the upload holds no file; send the study's DICOM files as multipart 'files'")
    info = header_info(files, hash_id)
    with tempfile.TemporaryDirectory(prefix="p2med-upload-") as tmp:
        paths = []
        for i, data in enumerate(files):
            path = Path(tmp) / f"file-{i + 1:04d}"
            path.write_bytes(data)
            paths.append(path)
        exam = ingest_files(paths, cfg, names=[p.name for p in paths])
    if not exam.images:
        reasons = sorted({f"{o.code}: {o.text}" for o in exam.files.values() if o.status != "used"})
        raise P2MedError("no usable image in the upload (" + "; ".join(reasons[:5] or exam.warnings) + ")")
    entries = [({k: v for k, v in e.items() if k in ("role", "true_slices", "shape", "chosen_by")}, arr)
               for e, arr in exam.images]
    info.update(modality=exam.modality, warnings=exam.warnings[:10])
    return info, entries


def preview_png(arr: np.ndarray, index: int | None = None) -> bytes:
    """A windowed slice (default the middle one) of float [S, H, W] in 0..1 as an 8-bit PNG."""
    from PIL import Image

    k = arr.shape[0] // 2 if index is None else min(max(index, 0), arr.shape[0] - 1)
    pixels = (np.clip(arr[k], 0, 1) * 255 + 0.5).astype(np.uint8)   # [H, W]
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, format="PNG")
    return buf.getvalue()
