"""The hospital-export schema: tables, their fields, the text sections and the six tasks.

Knows nothing about files on disk (``tables.py``) or checking (``validate.py``). A record row looks like
``{"record_id": "R1", "patient_id": "P1", "task": "outpatient", "lang": "zh", "chief_complaint": "咳嗽3天", ...}``:
each text section is a column named by its key in ``SECTIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FORMAT_NAME = "p2med-export"
FORMAT_VERSION = 1
LANGS = ("zh", "en")
MODALITIES = ("XR", "CT")
SEXES = ("M", "F", "U")
VISIT_KINDS = ("outpatient", "inpatient")
TABLES = ("patients", "visits", "exams", "records")
TABLE_SUFFIXES = (".jsonl", ".csv", ".parquet")
FILES_SEPARATOR = "|"  # joins the ``files`` list in CSV / Parquet cells

# section key -> (Chinese header, English header); the headers appear in prompts and parsed answers.
SECTIONS: dict[str, tuple[str, str]] = {
    "chief_complaint": ("主诉", "Chief complaint"),
    "present_illness": ("现病史", "History of present illness"),
    "past_history": ("既往史", "Past history"),
    "personal_history": ("个人史", "Personal history"),
    "family_history": ("家族史", "Family history"),
    "physical_exam": ("体格检查", "Physical examination"),
    "auxiliary_exam": ("辅助检查", "Auxiliary examination"),
    "admission_status": ("入院情况", "Condition on admission"),
    "clinical_features": ("病例特点", "Clinical history features"),
    "additional_history": ("补充病史和体征", "Additional clinical history and signs"),
    "dialogue": ("问诊对话", "Consultation dialogue"),
    "preliminary_diagnosis": ("初步诊断", "Preliminary diagnosis"),
    "treatment_recommendation": ("处理意见", "Treatment recommendation"),
    "treatment_plan": ("治疗方案", "Treatment plan"),
    "diagnostic_basis": ("诊断依据", "Diagnostic basis"),
    "admission_diagnosis": ("入院诊断", "Admission diagnosis"),
    "current_diagnosis": ("目前诊断", "Current diagnosis"),
    "diagnosis_treatment_plan": ("诊疗计划", "Diagnostic and treatment plan"),
    "findings": ("影像所见", "Findings"),
    "impression": ("影像诊断", "Impression"),
}


@dataclass(frozen=True)
class Task:
    """One of the six tasks: which table it lives in and which sections are its inputs and outputs."""

    name: str
    table: str  # "exams" or "records"
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    zh: str
    en: str


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("xray_report", "exams", (), ("findings", "impression"), "X线报告", "X-ray report"),
    Task("ct_report", "exams", (), ("findings", "impression"), "CT报告", "CT report"),
    Task("outpatient", "records", ("chief_complaint", "present_illness", "physical_exam"),
         ("preliminary_diagnosis", "treatment_recommendation", "treatment_plan"), "门诊病历", "Outpatient record"),
    Task("first_course", "records",
         ("present_illness", "physical_exam", "auxiliary_exam", "clinical_features"),
         ("diagnostic_basis", "admission_diagnosis", "diagnosis_treatment_plan"),
         "首次病程记录", "First disease course record"),
    Task("attending_round", "records", ("clinical_features", "additional_history"),
         ("diagnostic_basis", "current_diagnosis", "diagnosis_treatment_plan"),
         "主治医师首次查房记录", "Attending physician's first ward round"),
    Task("chief_round", "records", ("clinical_features", "additional_history"),
         ("diagnostic_basis", "current_diagnosis", "diagnosis_treatment_plan"),
         "主任医师首次查房记录", "Chief physician's first ward round"),
)}
RECORD_TASKS = tuple(t for t, spec in TASKS.items() if spec.table == "records")
EXAM_TASK = {"XR": "xray_report", "CT": "ct_report"}


@dataclass(frozen=True)
class Variant:
    """A task variant declared in ``export.json`` for data that has other sections (SPEC section 3).

    Example: IMCS-21 has one 建议 where the paper has recommendation + plan, so it declares
    ``{"task": "outpatient", "inputs": [...], "outputs": ["preliminary_diagnosis", "treatment_recommendation"]}``.
    """

    name: str
    task: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    note: str = ""

    @classmethod
    def from_json(cls, name: str, data: dict) -> "Variant":
        return cls(name, data["task"], tuple(data["inputs"]), tuple(data["outputs"]), data.get("note", ""))

    def to_json(self) -> dict:
        return {"task": self.task, "inputs": list(self.inputs), "outputs": list(self.outputs), "note": self.note}


@dataclass(frozen=True)
class Field:
    name: str
    required: bool
    kind: str  # id | enum | date | datetime | text | files
    doc: str
    choices: tuple[str, ...] = field(default=())


FIELDS: dict[str, tuple[Field, ...]] = {
    "patients": (
        Field("patient_id", True, "id", "hospital patient id (pseudonymous after `p2med deid`)"),
        Field("sex", False, "enum", "M, F or U", SEXES),
        Field("birth_date", False, "date", "YYYY-MM-DD"),
        Field("name", False, "text", "identifying: patient name (removed by `p2med deid`)"),
        Field("guardian_names", False, "text", "identifying: guardians' names, '|'-separated"),
        Field("id_number", False, "text", "identifying: 身份证 number"),
        Field("phone", False, "text", "identifying: contact phone numbers, '|'-separated"),
        Field("address", False, "text", "identifying: home address"),
        Field("medical_record_numbers", False, "text", "identifying: 门诊号/住院号/病案号, '|'-separated"),
    ),
    "visits": (
        Field("visit_id", True, "id", "visit id"),
        Field("patient_id", True, "id", "the patient of this visit"),
        Field("kind", True, "enum", "outpatient or inpatient", VISIT_KINDS),
        Field("start_time", False, "datetime", "admission / consultation time"),
        Field("end_time", False, "datetime", "discharge time (inpatient)"),
        Field("department", False, "text", "e.g. 儿科呼吸门诊"),
    ),
    "exams": (
        Field("exam_id", True, "id", "radiology exam id"),
        Field("patient_id", True, "id", "the patient"),
        Field("visit_id", False, "id", "the visit the exam belongs to"),
        Field("modality", True, "enum", "XR (2D radiograph) or CT", MODALITIES),
        Field("exam_time", False, "datetime", "acquisition time"),
        Field("files", False, "files", "image files or folders of this exam, relative to the export root"),
        Field("findings", False, "text", "report findings"),
        Field("impression", False, "text", "report impression"),
        Field("lang", False, "enum", "language of the report: zh or en (required when there is report text)",
              LANGS),
        Field("report_origin", False, "text",
              "radiologist (default), label-derived (written from a dataset label) or none"),
        Field("variant", False, "id", "a task variant declared in export.json"),
    ),
    "records": (
        Field("record_id", True, "id", "text record id"),
        Field("patient_id", True, "id", "the patient"),
        Field("visit_id", False, "id", "the visit"),
        Field("task", True, "enum", "outpatient, first_course, attending_round or chief_round", RECORD_TASKS),
        Field("lang", True, "enum", "zh or en", LANGS),
        Field("record_time", False, "datetime", "when the record was written"),
        Field("variant", False, "id", "a task variant declared in export.json"),
        *(Field(key, False, "text", f"section {zh} / {en}") for key, (zh, en) in SECTIONS.items()
          if key not in ("findings", "impression")),
    ),
}
ID_FIELD = {"patients": "patient_id", "visits": "visit_id", "exams": "exam_id", "records": "record_id"}
IDENTIFYING_FIELDS = ("name", "guardian_names", "id_number", "phone", "address", "medical_record_numbers")
LIST_FIELDS = ("files",)


def task_of(table: str, row: dict) -> str | None:
    """The task a row trains: records name it; exams derive it from their modality."""
    if table == "records":
        return row.get("task")
    if table == "exams":
        return EXAM_TASK.get(row.get("modality") or "")
    return None


def sections_of(task: str, variant: Variant | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(inputs, outputs) of a task, or of the declared variant when there is one."""
    if variant is not None:
        return variant.inputs, variant.outputs
    spec = TASKS[task]
    return spec.inputs, spec.outputs
