"""`p2med validate`: the synthetic export passes; broken exports fail with a line naming file, line, field."""

from __future__ import annotations

import json
import shutil

import pytest

from p2med.cli import main
from p2med.export.tables import Export, write_export
from p2med.export.validate import validate


def _tiny(root, **changes):
    """A minimal valid export (one patient, one visit, one XR exam with a file, one outpatient record)."""
    (root / "images" / "e1").mkdir(parents=True)
    (root / "images" / "e1" / "a.dcm").write_bytes(b"\0" * 132 + b"DICM")
    tables = {
        "patients": [{"patient_id": "p1", "sex": "F", "birth_date": "2020-01-02"}],
        "visits": [{"visit_id": "v1", "patient_id": "p1", "kind": "outpatient", "start_time": "2024-01-02T08:00:00"}],
        "exams": [{"exam_id": "e1", "patient_id": "p1", "visit_id": "v1", "modality": "XR",
                   "exam_time": "2024-01-02T09:00:00", "files": ["images/e1"], "findings": "双肺纹理清晰。",
                   "impression": "心肺未见异常。", "lang": "zh"}],
        "records": [{"record_id": "r1", "patient_id": "p1", "visit_id": "v1", "task": "outpatient", "lang": "zh",
                     "chief_complaint": "咳嗽3天", "present_illness": "咳嗽", "physical_exam": "双肺呼吸音粗",
                     "preliminary_diagnosis": "急性支气管炎", "treatment_recommendation": "多饮水",
                     "treatment_plan": "氨溴索"}],
    }
    for table, rows in changes.items():
        tables[table] = rows
    write_export(root, tables, name="tiny", source="test")
    return root


def test_tiny_export_is_valid(tmp_path):
    report = validate(_tiny(tmp_path))
    assert report.ok, [str(p) for p in report.problems]
    assert report.counts == {"patients": 1, "visits": 1, "exams": 1, "records": 1}


def test_synthetic_export_validates(small_hospital):
    export, _ = small_hospital
    report = validate(export)
    assert report.ok, [str(p) for p in report.errors][:10]
    assert report.counts["exams"] > 0 and report.counts["records"] > 0
    # planted missing output sections are warnings (build drops them), not errors
    assert any("output section empty" in p.message for p in report.warnings)


@pytest.mark.parametrize("table, row_patch, field, text", [
    ("exams", {"modality": "MR"}, "modality", "expected one of XR, CT, got 'MR'"),
    ("exams", {"files": ["images/nothere"]}, "files", "does not exist"),
    ("exams", {"files": ["../outside"]}, "files", "must be relative"),
    ("exams", {"patient_id": "p9"}, "patient_id", "not in the patients table"),
    ("exams", {"exam_id": None}, "exam_id", "required"),
    ("exams", {"lang": None}, "lang", "required when the exam has report text"),
    ("records", {"task": "discharge"}, "task", "expected one of"),
    ("records", {"visit_id": "v9"}, "visit_id", "not in the visits table"),
    ("records", {"variant": "nope"}, "variant", "not declared"),
    ("visits", {"kind": "er"}, "kind", "expected one of outpatient, inpatient"),
    ("patients", {"birth_date": "02/01/2020"}, "birth_date", "expected a date"),
])
def test_broken_field_is_an_error_naming_file_line_field(tmp_path, table, row_patch, field, text):
    root = _tiny(tmp_path)
    rows = Export.open(root).load(table)
    rows[0].update(row_patch)
    write_export(root, {table: rows}, name="tiny", source="test")
    report = validate(root)
    assert not report.ok
    hits = [p for p in report.errors if p.file == f"{table}.jsonl" and p.line == 1 and p.field == field]
    assert hits and text in hits[0].message, [str(p) for p in report.problems]
    assert str(hits[0]).startswith(f"ERROR {table}.jsonl:1 {field}:")


def test_bad_json_line_and_duplicate_id(tmp_path):
    root = _tiny(tmp_path)
    path = root / "records.jsonl"
    first = path.read_text().splitlines()[0]
    path.write_text(first + "\n" + '{"record_id": "r2", "patient_id"\n' + first + "\n")
    report = validate(root)
    messages = {(p.line, p.field): p.message for p in report.errors}
    assert "not valid JSON" in messages[(2, None)]
    assert "duplicate id (first at line 1)" in messages[(3, "record_id")]


def test_missing_optional_fields_are_warnings_only(tmp_path):
    root = _tiny(tmp_path, patients=[{"patient_id": "p1"}])
    report = validate(root)
    assert report.ok
    assert {p.field for p in report.warnings} >= {"sex", "birth_date"}


def test_csv_and_parquet_tables(tmp_path):
    root = _tiny(tmp_path)
    exams = Export.open(root).load("exams")
    (root / "exams.jsonl").unlink()
    header = ["exam_id", "patient_id", "visit_id", "modality", "files", "findings", "impression", "lang"]
    lines = [",".join(header), ",".join(["e1", "p1", "v1", "XR", "images/e1|images/e1/a.dcm", "x", "y", "zh"]),
             ",".join(["e2", "p1", "", "CT", "", "", "", ""])]
    (root / "exams.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = validate(root)
    errs = [str(p) for p in report.errors]
    assert errs == ["ERROR exams.csv:3 files: an exam needs image files or report text; it has neither"], errs
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa
    (root / "exams.csv").unlink()
    exams[0]["files"] = "|".join(exams[0]["files"])
    pq.write_table(pa.Table.from_pylist(exams), root / "exams.parquet")
    assert validate(root).ok


def test_gbk_csv_is_reported_not_crashed(tmp_path):
    root = _tiny(tmp_path)
    (root / "records.jsonl").unlink()
    (root / "records.csv").write_bytes("record_id,patient_id,task,lang,chief_complaint\nr1,p1,outpatient,zh,咳嗽\n"
                                       .encode("gbk"))
    report = validate(root)
    assert any(p.file == "records.csv" and "not UTF-8" in p.message for p in report.errors)


def test_cli_exit_codes(tmp_path, capsys):
    root = _tiny(tmp_path / "ok")
    assert main(["validate", str(root)]) == 0
    assert "-> OK" in capsys.readouterr().out
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    rows = Export.open(broken).load("exams")
    rows[0]["modality"] = "PET"
    write_export(broken, {"exams": rows}, name="tiny", source="test")
    assert main(["validate", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "ERROR exams.jsonl:1 modality:" in out and "FAILED" in out
    assert main(["validate", "--json", str(broken)]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False
