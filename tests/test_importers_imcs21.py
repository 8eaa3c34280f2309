"""`p2med import imcs21` on the shared IMCS-21 folders: one record per id from two forms of the same dialogues,
the declared variant and nothing invented; a truncated line and a conflicting duplicate in a broken copy."""

from __future__ import annotations

import json

from conftest import shared_data
from importer_checks import check_accounting, check_manifest, run_import, table

from p2med.export.schema import SECTIONS
from p2med.importers.imcs21 import SECTION_OF, VARIANT, parse_line


def _ids(folder) -> dict[str, list[str]]:
    """id -> the ledger sources of its lines, read straight from the input files."""
    out: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            obj = json.loads(line)
            out.setdefault(obj.get("sample_id") or obj["id"], []).append(f"{path.name}:{i}")
    return out


def test_shared_folder_one_record_per_id(tmp_path):
    src = shared_data("imcs21_mrg_1000")
    out = tmp_path / "imcs"
    result, printed = run_import("imcs21", src, out)
    entries = check_accounting(out, src, rows={p.name: "jsonl" for p in src.glob("*.jsonl")})
    ids = _ids(src)
    records = {r["record_id"]: r for r in table(out, "records")}
    assert len(records) == len(ids) == result.counts["records"][VARIANT.name]
    for cid, sources in ids.items():
        used = [s for s in sources if entries[s]["status"] == "used"]
        assert len(used) == 1 and entries[used[0]]["record_id"] == f"imcs-{cid}"
        for other in set(sources) - set(used):  # the other form names the kept line
            assert entries[other]["reason"].startswith("duplicate-id:") and used[0] in entries[other]["reason"]
    assert not printed  # both forms agree everywhere: nothing to say line by line
    check_manifest(out)


def test_variant_sections_are_real_and_not_padded(tmp_path):
    src = shared_data("imcs21_mrg_1000")
    out = tmp_path / "imcs"
    run_import("imcs21", src, out)
    meta = json.loads((out / "export.json").read_text(encoding="utf-8"))
    variant = meta["variants"][VARIANT.name]
    assert set(variant["inputs"] + variant["outputs"]) <= set(SECTIONS)
    assert set(variant["inputs"] + variant["outputs"]) == set(SECTION_OF.values())
    raw = {}
    for line in (src / "IMCS-MRG-1000.raw.jsonl").read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        raw[f"imcs-{obj['sample_id']}"] = obj
    for rec in table(out, "records"):
        sections = {k for k in rec if k in SECTIONS}
        assert sections <= set(variant["inputs"] + variant["outputs"]) | {"dialogue"}
        assert rec["lang"] == "zh" and rec["variant"] == VARIANT.name and rec["task"] == "outpatient"
        source = raw[rec["record_id"]]
        for key in sections - {"dialogue"}:  # every section text is in the source's report, verbatim
            assert rec[key] in source["target"]
        for turn in rec["dialogue"].splitlines():
            assert turn[3:] in source["input"]


def test_raw_and_parsed_forms_parse_to_the_same_consultation():
    src = shared_data("imcs21_mrg_1000")
    forms: dict[str, dict[str, object]] = {}
    for path in sorted(src.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            form, consultation = parse_line(json.loads(line))
            forms.setdefault(consultation.id, {})[form] = consultation
    assert forms and all(set(f) == {"raw", "parsed"} for f in forms.values())
    assert all(f["raw"] == f["parsed"] for f in forms.values())


def test_promptcblue_toy_lines_without_report_are_excluded(tmp_path):
    src = shared_data("imcs21_mrg_promptcblue_toy")
    out = tmp_path / "toy"
    _, printed = run_import("imcs21", src, out)
    entries = check_accounting(out, src, rows={p.name: "jsonl" for p in src.glob("*.jsonl")})
    for path in sorted(src.glob("*.jsonl")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            source = f"{path.name}:{i}"
            if json.loads(line)["target"].strip():
                assert entries[source]["status"] == "used"
            else:  # PromptCBLUE test lines carry no reference report
                assert entries[source]["reason"].startswith("no-report:")
                assert any(p.startswith(source + ":") and p.endswith("-> excluded") for p in printed)


def test_truncated_line_and_conflicting_duplicate(tmp_path):
    src = shared_data("imcs21_mrg_1000")
    broken = tmp_path / "in"
    broken.mkdir()
    raw = (src / "IMCS-MRG-1000.raw.jsonl").read_text(encoding="utf-8").splitlines()[:12]
    parsed = (src / "imcs21_mrg_1000.parsed.jsonl").read_text(encoding="utf-8").splitlines()[:12]
    raw[4] = raw[4][: len(raw[4]) // 2]  # line 5 cut in the middle
    changed = json.loads(parsed[7])
    changed["report"]["诊断"] += "（另一位标注者）"  # line 8: same id, another report
    parsed[7] = json.dumps(changed, ensure_ascii=False)
    (broken / "a.raw.jsonl").write_text("\n".join(raw) + "\n", encoding="utf-8")
    (broken / "b.parsed.jsonl").write_text("\n".join(parsed) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    _, printed = run_import("imcs21", broken, out)
    entries = check_accounting(out, broken, rows={"a.raw.jsonl": "jsonl", "b.parsed.jsonl": "jsonl"})
    assert entries["a.raw.jsonl:5"]["status"] == "quarantined" and entries["a.raw.jsonl:5"]["reason"].startswith(
        "bad-json:")
    assert any(line.startswith("a.raw.jsonl:5: not valid JSON") and line.endswith("-> quarantined") for line in printed)
    # the truncated id still gets its one record, from the parsed form of the same dialogue
    assert entries["b.parsed.jsonl:5"]["status"] == "used"
    assert entries["b.parsed.jsonl:8"]["reason"].startswith("duplicate-id:")
    assert any(line.startswith("b.parsed.jsonl:8:") and "differs" in line for line in printed)
    assert len(table(out, "records")) == 12
