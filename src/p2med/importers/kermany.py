"""Kermany pediatric chest X-rays (Guangzhou Women and Children's) -> X-ray exams with a label-derived impression.

Labels come from ``labels.csv`` (file, label = NORMAL | PNEUMONIA, subtype = NORMAL | BACTERIA | VIRUS,
patient_key) when the folder has one, else from the Kaggle layout itself: the parent folder (``NORMAL/`` or
``PNEUMONIA/``) and the file name (``person12_bacteria_47.jpeg``, ``person3_virus_16.jpeg``,
``IM-0115-0001.jpeg``, ``NORMAL2-IM-0007-0001.jpeg``), which also gives the patient key.

Each image is one exam with one frontal (anteroposterior) view, copied to ``images/kermany-<stem>/frontal.jpeg``;
the images of one patient key share a patient. The dataset has no report: the impression is a fixed Chinese
sentence per label (``IMPRESSIONS``), findings are empty and ``report_origin`` is ``label-derived``.
Example exam: ``{"exam_id": "kermany-person7_bacteria_24", "patient_id": "kermany-person7", "modality": "XR",
"files": ["images/kermany-person7_bacteria_24/frontal.jpeg"], "impression": "细菌性肺炎。", "lang": "zh",
"report_origin": "label-derived"}``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from .run import ImportRun

USES_IMAGES = False
LABELS = "labels.csv"
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
# subtype -> the impression written for it (zh; the pipeline's reports are Chinese, the children Chinese)
IMPRESSIONS = {"NORMAL": "心肺未见明显异常。", "BACTERIA": "细菌性肺炎。", "VIRUS": "病毒性肺炎。",
               "PNEUMONIA": "肺炎。"}
SUBTYPES_OF = {"NORMAL": ("NORMAL",), "PNEUMONIA": ("BACTERIA", "VIRUS", "PNEUMONIA")}
VARIANTS = ()
NOTES = ("Kermany et al., Cell 2018: pediatric chest radiographs (1-5 years, Guangzhou) labelled NORMAL / "
         "bacterial / viral pneumonia, here at 224x224. No reports: each impression is written from the label "
         "(report_origin label-derived), findings empty. See docs/importers.md.")

_PERSON = re.compile(r"^(person\d+)_(bacteria|virus)_\d+$", re.IGNORECASE)
_IM = re.compile(r"^((?:NORMAL\d*-)?IM-\d+)(?:-\d+)+$", re.IGNORECASE)


def label_from_path(rel: str) -> tuple[str, str, str] | None:
    """``PNEUMONIA/person7_bacteria_24.jpeg`` -> ``("PNEUMONIA", "BACTERIA", "person7")``; None if not Kaggle-named."""
    path = PurePosixPath(rel)
    folder = path.parent.name.upper()
    person, im = _PERSON.match(path.stem), _IM.match(path.stem)
    if folder == "PNEUMONIA" and person:
        return "PNEUMONIA", person.group(2).upper(), person.group(1)
    if folder == "NORMAL" and im:
        return "NORMAL", "NORMAL", im.group(1)
    return None


def convert(run: ImportRun) -> None:
    files = run.files()
    images = [rel for rel in files if rel.lower().endswith(IMAGE_SUFFIXES)]
    labelled: list[tuple[str, str, str, str]] = []  # (ledger source, image, subtype, patient key)
    if LABELS in files:
        listed: set[str] = set()
        for where, row in run.csv_rows(run.src / LABELS, LABELS, ("file", "label"))[1]:
            label, subtype = row["label"].upper(), (row.get("subtype") or row["label"]).upper()
            rel = PurePosixPath(row["file"]).as_posix()
            if label not in SUBTYPES_OF or subtype not in SUBTYPES_OF[label]:
                run.excluded(where, "unknown-label", f"label {row['label']!r} / subtype {row.get('subtype')!r} is "
                                                     f"not one of {sorted(SUBTYPES_OF)} with its subtypes")
            elif rel not in files:
                run.excluded(where, "missing-image", f"{row['file']} does not exist in the folder; no exam")
            elif rel in listed:
                run.excluded(where, "duplicate-file", f"{rel} is labelled again (first label kept)")
            else:
                key = row.get("patient_key") or (label_from_path(rel) or ("", "", PurePosixPath(rel).stem))[2]
                labelled.append((where, rel, subtype, key))
                listed.add(rel)
        for rel in images:
            if rel not in listed and rel not in run.ledger:
                run.excluded(rel, "unlabelled", f"not listed (or not usable) in {LABELS}; no exam")
    else:
        for rel in images:
            found = label_from_path(rel)
            if found is None:
                run.excluded(rel, "unlabelled", "no labels.csv and the path is not NORMAL/IM-*, NORMAL/NORMAL2-IM-* "
                                                "or PNEUMONIA/personN_bacteria|virus_M")
            else:
                labelled.append((rel, rel, found[1], found[2]))

    for where, rel, subtype, key in labelled:
        exam_id = f"kermany-{PurePosixPath(rel).stem}"
        patient_id = f"kermany-{key}"
        if exam_id in run.exams:  # the same file name in two folders (e.g. train/ and test/)
            run.excluded(where, "duplicate-name", f"{rel}: an image of the same file name is already exam {exam_id}")
            if where != rel:
                run.excluded(rel, "duplicate-name", f"see {where}", quiet=True)
            continue
        dest = run.place(run.src / rel, f"images/{exam_id}/frontal{PurePosixPath(rel).suffix.lower()}")
        run.patient(patient_id)
        run.exam({"exam_id": exam_id, "patient_id": patient_id, "modality": "XR", "files": [dest],
                  "impression": IMPRESSIONS[subtype], "lang": "zh", "report_origin": "label-derived"})
        run.used(where, exam_id=exam_id)
        if where != rel:
            run.used(rel, exam_id=exam_id)
