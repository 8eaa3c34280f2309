"""`p2med import ccl2025` on the shared CCL2025 records: first-course records of a declared stand-in variant,
every section copied verbatim from its source field; a truncated JSON array keeps its complete elements."""

from __future__ import annotations

import json
import math

from conftest import shared_data
from importer_checks import check_accounting, check_manifest, import_reencoded, run_import, table

from p2med.importers.ccl2025 import ID_FIELD, SECTION_OF, VARIANT

FILE = "ICD-Coding-test-A.json"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or not str(value).strip()


def test_shared_records_map_verbatim_to_a_stand_in_variant(tmp_path):
    src = shared_data("ccl2025_cemr_icd_testA")
    out = tmp_path / "ccl"
    _, printed = run_import("ccl2025", src, out)
    entries = check_accounting(out, src, rows={FILE: "json"})
    objects = json.loads((src / FILE).read_text(encoding="utf-8"))
    records = {r["record_id"]: r for r in table(out, "records")}
    assert len(records) == len({o[ID_FIELD] for o in objects})
    for i, obj in enumerate(objects):
        entry = entries[f"{FILE}[{i}]"]
        rec = records[entry["record_id"]]
        assert rec["task"] == "first_course" and rec["variant"] == VARIANT.name and rec["lang"] == "zh"
        for field, section in SECTION_OF.items():
            assert rec.get(section) == (None if _missing(obj[field]) else obj[field].strip())
        partial = [f for f in SECTION_OF if _missing(obj[f])]
        assert bool(partial) == any(line.startswith(f"{FILE}[{i}]:") for line in printed)
    meta = json.loads((out / "export.json").read_text(encoding="utf-8"))
    assert "stand-in" in meta["notes"].lower() and "stand-in" in meta["variants"][VARIANT.name]["note"].lower()
    assert set(meta["variants"][VARIANT.name]["outputs"]) == {"admission_diagnosis", "diagnosis_treatment_plan"}
    assert check_manifest(out)["counts"]["records"] == {VARIANT.name: len(records)}


def test_gbk_json_is_decoded_and_said(tmp_path):
    printed, gbk, utf8 = import_reencoded("ccl2025", shared_data("ccl2025_cemr_icd_testA"), FILE, "gb18030", tmp_path)
    assert table(gbk, "records") == table(utf8, "records")
    assert any(line.startswith(f"{FILE}: not UTF-8") and "GBK" in line for line in printed)
    entries = check_accounting(gbk, tmp_path / "in-gb18030", rows={FILE: "json:gb18030"})
    assert all(e.get("decoded_as") == "gbk" for e in entries.values())


def test_truncated_json_array_keeps_complete_elements(tmp_path):
    objects = json.loads((shared_data("ccl2025_cemr_icd_testA") / FILE).read_text(encoding="utf-8"))
    k = len(objects) // 2
    whole = json.dumps(objects[:k], ensure_ascii=False, indent=1)
    broken = whole[: whole.rindex("]")] + ",\n" + json.dumps(objects[k], ensure_ascii=False)[:300]  # cut in k
    work = tmp_path / "in"
    work.mkdir()
    (work / FILE).write_text(broken, encoding="utf-8")
    out = tmp_path / "out"
    _, printed = run_import("ccl2025", work, out)
    entries = {e["source"]: e for e in map(json.loads, (out / "ledger.jsonl").read_text(encoding="utf-8").splitlines())}
    tail = f"{FILE}[{k}:]"
    assert set(entries) == {f"{FILE}[{i}]" for i in range(k)} | {tail}
    assert all(entries[f"{FILE}[{i}]"]["status"] == "used" for i in range(k))
    assert entries[tail]["status"] == "quarantined" and entries[tail]["reason"].startswith("truncated:")
    assert len([line for line in printed if line.startswith(tail + ":")]) == 1
    assert len(table(out, "records")) == k
