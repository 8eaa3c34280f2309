"""IU X-ray (Open-i, Indiana University) reports + projections (+ images) -> English X-ray exams.

Reads ``indiana_reports.csv`` (uid, findings, impression, ...) and, when present, ``indiana_projections.csv``
(uid, filename, projection = Frontal | Lateral) from the source folder; images come from ``--images``:
either a folder with a ``metadata.csv`` (file, uid and a view column, as ``iu_xray_images_mini``) or image
files named as in the projections table (``1_IM-0001-4001.dcm.png``, Open-i ``CXR1_IM-0001-4001.png``).

One exam per uid (one study; IU has no patient ids, so one patient per uid), with at most one frontal and
one lateral view copied to ``images/iu-<uid>/frontal.png`` / ``lateral.png``; further views are excluded
with a reason. A uid without images stays a text-only exam (findings/impression, no files). Text is English
(``lang: en``) and kept verbatim, ``XXXX`` de-identification marks included.
Example exam: ``{"exam_id": "iu-2", "patient_id": "iu-2", "modality": "XR", "files": ["images/iu-2/frontal.png",
"images/iu-2/lateral.png"], "findings": "Borderline cardiomegaly. ...", "impression": "No acute pulmonary
findings.", "lang": "en", "report_origin": "radiologist"}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from .readers import InputError
from .run import IMAGES_PREFIX, ImportRun

USES_IMAGES = True
REPORTS = "indiana_reports.csv"
PROJECTIONS = "indiana_projections.csv"
SPLIT_FILE = "r2gen_annotation.json"
METADATA = "metadata.csv"
VIEW_COLUMNS = ("view_by_visual_check", "projection", "view")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm")
# projection / view word (lower case) -> the view we keep
VIEWS = {"frontal": "frontal", "pa": "frontal", "ap": "frontal", "lateral": "lateral", "ll": "lateral",
         "lat": "lateral"}
VIEW_ORDER = ("frontal", "lateral")
VARIANTS = ()
NOTES = ("IU X-ray / Open-i (Demner-Fushman et al., JAMIA 2016): adult chest radiographs with English reports; "
         "one study per uid, no patient ids or dates. Not pediatric. See docs/importers.md.")


@dataclass
class Image:
    rel: str  # path in the --images folder
    uid: str
    view: str
    via: str  # the ledger source that said which uid and view this is (a metadata or projection row)

    @property
    def from_metadata(self) -> bool:
        return self.via.startswith(IMAGES_PREFIX + METADATA)


def _name_key(name: str) -> str:
    """``CXR1_IM-0001-4001.png`` and ``1_IM-0001-4001.dcm.png`` -> ``1_im-0001-4001``."""
    stem = PurePosixPath(name).name.lower()
    for suffix in IMAGE_SUFFIXES:
        stem = stem.removesuffix(suffix)
    stem = stem.removesuffix(".dcm")
    return stem.removeprefix("cxr")


def _view(word: str) -> str | None:
    return VIEWS.get(word.strip().lower())


def convert(run: ImportRun) -> None:
    if not (run.src / REPORTS).is_file():
        raise InputError(f"{run.src.name}: no {REPORTS} (the IU report table); is this the iu_xray_reports folder?")
    reports = _read_reports(run)
    projections = _read_projections(run, reports) if (run.src / PROJECTIONS).is_file() else []
    if (run.src / SPLIT_FILE).is_file():
        run.excluded(SPLIT_FILE, "not-used", "R2Gen train/val/test split; P2Med makes its own split by patient "
                                             "and the report text repeats indiana_reports.csv", quiet=True)
    images = _find_images(run, reports, projections) if run.images else []

    kept: dict[str, dict[str, Image]] = {}
    extra: dict[str, str] = {}  # ledger source of a projection row -> why its image is not used
    for img in sorted(images, key=lambda i: (VIEW_ORDER.index(i.view), i.rel)):
        views = kept.setdefault(img.uid, {})
        if img.view not in views:
            views[img.view] = img
            continue
        reason = f"exam iu-{img.uid} already has a {img.view} view ({IMAGES_PREFIX}{views[img.view].rel})"
        run.excluded(IMAGES_PREFIX + img.rel, "extra-view", reason, quiet=True)
        if img.from_metadata:
            run.excluded(img.via, "extra-view", reason, quiet=True)
        else:
            extra[img.via] = reason

    # a projection row is used when its image is in the export (matched by name, or the metadata.csv image
    # of the same uid and view); otherwise it describes an image that is not here
    attached: set[tuple[str, str]] = set()
    for where, uid, filename, view in projections:
        img = kept.get(uid, {}).get(view)
        if img is not None and (img.via == where or (img.from_metadata and (uid, view) not in attached)):
            attached.add((uid, view))
            run.used(where, exam_id=f"iu-{uid}")
        elif where in extra:
            run.excluded(where, "extra-view", extra[where], quiet=True)
        else:
            text = (f"{filename} is not in the --images folder" if run.images else "no --images folder given")
            run.excluded(where, "no-image", text, quiet=True)

    for uid, (where, findings, impression) in reports.items():
        exam_id = f"iu-{uid}"
        views = kept.get(uid, {})
        if not views and not findings and not impression:
            run.excluded(where, "no-report", "findings and impression are empty and the study has no image")
            continue
        files = []
        for view in VIEW_ORDER:
            img = views.get(view)
            if img is None:
                continue
            suffix = PurePosixPath(img.rel).suffix.lower()
            files.append(run.place(run.images / img.rel, f"images/{exam_id}/{view}{suffix}"))
            run.used(IMAGES_PREFIX + img.rel, exam_id=exam_id)
            if img.from_metadata:
                run.used(img.via, exam_id=exam_id)
        run.patient(exam_id)
        run.exam({"exam_id": exam_id, "patient_id": exam_id, "modality": "XR", "files": files,
                  "findings": findings, "impression": impression, "lang": "en",
                  "report_origin": "radiologist" if findings or impression else "none"})
        run.used(where, exam_id=exam_id)


def _read_reports(run: ImportRun) -> dict[str, tuple[str, str | None, str | None]]:
    """uid -> (ledger source, findings, impression); bad and duplicate rows are ledgered here."""
    reports: dict[str, tuple[str, str | None, str | None]] = {}
    for where, row in run.csv_rows(run.src / REPORTS, REPORTS, ("uid", "findings", "impression"))[1]:
        if not row["uid"]:
            run.quarantined(where, "no-uid", "the uid cell is empty")
        elif row["uid"] in reports:
            run.excluded(where, "duplicate-uid", f"uid {row['uid']} is imported from {reports[row['uid']][0]}")
        else:
            reports[row["uid"]] = (where, row["findings"] or None, row["impression"] or None)
    return reports


def _read_projections(run: ImportRun, reports: dict) -> list[tuple[str, str, str, str]]:
    """(ledger source, uid, filename, view) of every usable projection row; the others are ledgered here."""
    out = []
    for where, row in run.csv_rows(run.src / PROJECTIONS, PROJECTIONS, ("uid", "filename", "projection"))[1]:
        if row["uid"] not in reports:
            run.excluded(where, "unknown-uid", f"uid {row['uid']!r} has no row in {REPORTS}")
        elif _view(row["projection"]) is None:
            run.excluded(where, "unknown-projection",
                         f"projection {row['projection']!r} is neither Frontal nor Lateral; the view is not used")
        else:
            out.append((where, row["uid"], row["filename"], _view(row["projection"])))
    return out


def _find_images(run: ImportRun, reports: dict, projections: list) -> list[Image]:
    """Images of the --images folder with their uid and view; unusable files and rows are ledgered here."""
    assert run.images is not None
    files = run.files(run.images)
    images: list[Image] = []
    listed: set[str] = set()
    if METADATA in files:
        header, rows = run.csv_rows(run.images / METADATA, IMAGES_PREFIX + METADATA, ("file", "uid"))
        view_col = next((c for c in VIEW_COLUMNS if c in header), None)
        if view_col is None:
            raise InputError(f"{IMAGES_PREFIX}{METADATA}: no view column; expected one of {list(VIEW_COLUMNS)}")
        for where, row in rows:
            rel = PurePosixPath(row["file"]).as_posix()
            listed.add(rel)
            if rel not in files:
                run.excluded(where, "missing-image", f"{row['file']} does not exist in the --images folder; "
                                                     f"exam iu-{row['uid']} keeps its other views or stays text-only")
            elif row["uid"] not in reports:
                run.excluded(where, "unknown-uid", f"uid {row['uid']!r} has no row in {REPORTS}")
                run.excluded(IMAGES_PREFIX + rel, "unknown-uid", f"see {where}", quiet=True)
            elif _view(row[view_col]) is None:
                run.excluded(where, "unknown-projection",
                             f"view {row[view_col]!r} is neither Frontal nor Lateral; the image is not used")
                run.excluded(IMAGES_PREFIX + rel, "unknown-projection", f"see {where}", quiet=True)
            else:
                images.append(Image(rel, row["uid"], _view(row[view_col]), where))
    by_name = {_name_key(filename): (where, uid, view) for where, uid, filename, view in projections}
    for rel in files:
        if rel in listed or not rel.lower().endswith(IMAGE_SUFFIXES):
            continue
        hit = by_name.get(_name_key(rel))
        if hit is None:
            run.excluded(IMAGES_PREFIX + rel, "unmatched-image",
                         f"not in {METADATA} and its name matches no {PROJECTIONS} filename")
        else:
            where, uid, view = hit
            images.append(Image(rel, uid, view, where))
    return images
