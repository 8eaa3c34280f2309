"""Importers: real public datasets -> the hospital export (docs/export-format.md), one module per source.

``p2med import SOURCE SRC_DIR --out EXPORT_DIR [--images DIR]``; ``run.import_folder`` does the work, the
modules below know each dataset's files and fields, and docs/importers.md gives every mapping decision.
Example: ``import_folder("kermany", Path("../shared/data/kermany_pediatric_cxr_224_sample"), Path("runs/k"))``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# source name -> (module, what it reads); the order is the one `p2med import --help` shows.
SOURCES: dict[str, tuple[str, str]] = {
    "imcs21": ("p2med.importers.imcs21", "IMCS-21 pediatric consultations (PromptCBLUE or parsed JSONL) -> "
                                         "outpatient records"),
    "iu-xray": ("p2med.importers.iu_xray", "IU X-ray reports + projections (+ --images) -> English X-ray exams"),
    "kermany": ("p2med.importers.kermany", "Kermany pediatric chest X-rays + labels -> X-ray exams with a "
                                           "label-derived impression"),
    "dicom-folder": ("p2med.importers.dicom_folder", "any folder of DICOM files -> exams by StudyInstanceUID, "
                                                     "reports empty"),
    "ccl2025": ("p2med.importers.ccl2025", "CCL2025 Chinese inpatient records -> first-disease-course records "
                                           "(format stand-in)"),
    "cov-ctr": ("p2med.importers.cov_ctr", "COV-CTR Chinese CT reports -> CT report texts without images"),
}


def source_module(name: str) -> ModuleType:
    return importlib.import_module(SOURCES[name][0])
