"""CCL2025 Chinese inpatient records (EMR ICD-coding data) -> first-disease-course records, a format stand-in.

Reads every ``*.json`` (a top-level array of objects, or one object) and ``*.jsonl`` under the folder. Each
object has 病案标识 主诉 现病史 既往史 个人史 婚姻史 家族史 入院情况 入院诊断 诊疗经过 出院情况 出院医嘱. The records
are adult (mostly cardiology) discharge summaries, not pediatric first-course notes: they stand in for the
format only. Inputs: 主诉 现病史 既往史 个人史 家族史 入院情况; outputs: 入院诊断 and 诊疗经过 as the plan (the
hospital course, written at discharge). No 诊断依据 or 病例特点 exists; 婚姻史 (adult), 出院情况 and 出院医嘱
(discharge) are left out. A missing value (null, NaN) leaves its section empty and is said in one line.

Ids: patient ``ccl-<12 hex of sha256(病案标识)>``, one inpatient visit and one record per object; 病案标识 itself
goes to the patient's ``medical_record_numbers`` (an identifying field ``p2med deid`` uses, then drops).
Example record: ``{"record_id": "ccl-1a2b...-r", "task": "first_course", "variant": "first-course-ccl2025",
"chief_complaint": "发作性胸闷、喘6年余，加重2周。", ..., "admission_diagnosis": "1.冠状动脉粥样硬化性心脏病..."}``.
"""

from __future__ import annotations

import json
from typing import Any

from ..export.schema import Variant
from .readers import Damaged, read_json_array, read_jsonl
from .run import ImportRun, stable_id

USES_IMAGES = False
ID_FIELD = "病案标识"
# source field -> export section
SECTION_OF = {"主诉": "chief_complaint", "现病史": "present_illness", "既往史": "past_history",
              "个人史": "personal_history", "家族史": "family_history", "入院情况": "admission_status",
              "入院诊断": "admission_diagnosis", "诊疗经过": "diagnosis_treatment_plan"}
LEFT_OUT = ("婚姻史", "出院情况", "出院医嘱")
VARIANT = Variant(
    "first-course-ccl2025", "first_course",
    inputs=("chief_complaint", "present_illness", "past_history", "personal_history", "family_history",
            "admission_status"),
    outputs=("admission_diagnosis", "diagnosis_treatment_plan"),
    note="FORMAT STAND-IN: adult (mostly cardiology) CCL2025 discharge records, not pediatric first disease "
         "course records. 入院诊断 is the admission diagnosis; 诊疗经过 (the hospital course, written at discharge) "
         "stands in for the 诊疗计划; no 诊断依据 or 病例特点 exists, so none is output or input.")
VARIANTS = (VARIANT,)
NOTES = ("FORMAT STAND-IN: CCL2025 Chinese EMR ICD-coding records (Tianchi; adult, mostly cardiology, "
         "de-identified) mapped to first-disease-course records to exercise the inpatient path; not pediatric, "
         "not ward-round text. Redistribution terms unknown. See docs/importers.md.")


def _text(value: Any) -> str | None:
    """A section value: stripped text, or None for null / NaN / empty."""
    return (value.strip() or None) if isinstance(value, str) else None


def convert(run: ImportRun) -> None:
    seen: dict[str, str] = {}
    for rel in run.files():
        if rel.endswith(".json"):
            items, decoded = read_json_array(run.src / rel, rel)
            run.decoded(rel, decoded)
        elif rel.endswith(".jsonl"):
            items = read_jsonl(run.src / rel, rel)
        else:
            continue
        run.mark_read(rel)
        for where, obj in items:
            if isinstance(obj, Damaged):
                run.quarantined(where, obj.code, obj.text)
                continue
            if not isinstance(obj, dict) or not any(_text(obj.get(k)) for k in SECTION_OF):
                run.excluded(where, "unknown-format", f"expected an object with {', '.join(SECTION_OF)}")
                continue
            key = _text(obj.get(ID_FIELD)) or json.dumps(obj, ensure_ascii=False, sort_keys=True)
            if key in seen:
                run.excluded(where, "duplicate-id", f"the same {ID_FIELD} as {seen[key]} (first kept)")
                continue
            seen[key] = where
            _add(run, where, obj, key)


def _add(run: ImportRun, where: str, obj: dict[str, Any], key: str) -> None:
    patient_id = stable_id("ccl-", key)
    visit_id, record_id = f"{patient_id}-v", f"{patient_id}-r"
    sections = {SECTION_OF[k]: _text(obj.get(k)) for k in SECTION_OF}
    run.patient(patient_id, medical_record_numbers=_text(obj.get(ID_FIELD)))
    run.visit({"visit_id": visit_id, "patient_id": patient_id, "kind": "inpatient"})
    run.record({"record_id": record_id, "patient_id": patient_id, "visit_id": visit_id, "task": "first_course",
                "variant": VARIANT.name, "lang": "zh", **sections})
    missing = [k for k in SECTION_OF if sections[SECTION_OF[k]] is None]
    note = f"{', '.join(missing)} missing (null/NaN/empty); imported without" if missing else None
    run.used(where, note=note, record_id=record_id)
