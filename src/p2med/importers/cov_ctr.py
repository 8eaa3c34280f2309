"""COV-CTR Chinese chest CT reports -> CT exams with report text and no images.

Reads every ``*.csv`` under the folder with the columns image_id, findings (影像所见), impression (诊断意见)
(COVID, terminologies and reports_En are not used). UTF-8, or GBK with a printed line saying so. One exam
per row, ``modality: CT``, no files (the COV-CTR images are 2-D slices cut from paper figures, not CT
volumes), ``lang: zh``. Patients are unknown: the rows of one paper figure (``...p6-52%0.png``,
``...p6-52%1.png``) share a patient key, so a split by patient never separates slices of one figure.
Ids are stable hashes: ``covctr-<12 hex of image_id>``, patient ``covctr-p<12 hex of the figure>``.
Example exam: ``{"exam_id": "covctr-5d41...", "patient_id": "covctr-p7c21...", "modality": "CT",
"findings": "胸廓对称，纵隔心影居中，...", "impression": "右肺上叶炎性病变（符合病毒性肺炎）", "lang": "zh"}``.
"""

from __future__ import annotations

import re

from .run import ImportRun, stable_id

USES_IMAGES = False
COLUMNS = ("image_id", "findings", "impression")
VARIANTS = ()
NOTES = ("COV-CTR (Li et al., World Wide Web 2022): Chinese chest CT reports by radiologists of the First "
         "Affiliated Hospital of Harbin Medical University, adult COVID-19 cases; images not imported (2-D "
         "figure crops). Redistribution terms unknown. See docs/importers.md.")

_SUBFIGURE = re.compile(r"(%\d+)?\.(png|jpe?g)$", re.IGNORECASE)


def figure_of(image_id: str) -> str:
    """``2020.02.10.20021584-p6-52%3.png`` -> ``2020.02.10.20021584-p6-52``."""
    return _SUBFIGURE.sub("", image_id)


def convert(run: ImportRun) -> None:
    seen: dict[str, str] = {}
    for rel in run.files():
        if not rel.lower().endswith(".csv"):
            continue
        for where, row in run.csv_rows(run.src / rel, rel, COLUMNS)[1]:
            if not row["image_id"]:
                run.quarantined(where, "no-id", "the image_id cell is empty")
            elif row["image_id"] in seen:
                run.excluded(where, "duplicate-id", f"image_id {row['image_id']} is imported from "
                                                    f"{seen[row['image_id']]}")
            elif not row["findings"] and not row["impression"]:
                run.excluded(where, "no-report", "findings and impression are empty")
            else:
                seen[row["image_id"]] = where
                exam_id = stable_id("covctr-", row["image_id"])
                patient_id = stable_id("covctr-p", figure_of(row["image_id"]))
                run.patient(patient_id)
                run.exam({"exam_id": exam_id, "patient_id": patient_id, "modality": "CT",
                          "findings": row["findings"] or None, "impression": row["impression"] or None,
                          "lang": "zh", "report_origin": "radiologist"})
                missing = [c for c in ("findings", "impression") if not row[c]]
                run.used(where, note=f"{missing[0]} is empty; imported with the other" if missing else None,
                         exam_id=exam_id)
