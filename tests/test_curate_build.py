"""`p2med build` end to end on the synthetic hospital (planted duplicates, defects, thresholds, benchmark
exclusion, multi-round order, determinism) and on real IMCS-21 text (categories, dedup)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import shared_data

from p2med.curate.build import build_dataset, load_samples
from p2med.curate.config import BenchmarkConfig, BuildConfig

STAGES = ("stage1", "stage2", "stage3")
SMALL_BENCH = BenchmarkConfig(xray_single=3, xray_mrc_patients=1, ct_report=2, outpatient=4, first_course=1,
                              attending_round=1, chief_round=1, max_patient_share=0.5)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def built(small_hospital, small_hospital_ingested):
    export, truth = small_hospital
    root = small_hospital_ingested
    cfg = BuildConfig(scale=0.01, benchmark=SMALL_BENCH)
    result = build_dataset(export, root / "cache", root / "ds", cfg)
    return export, truth, root, cfg, result


def _ledger(ds: Path) -> dict[str, dict]:
    rows = _jsonl(ds / "ledger.jsonl")
    by = {r["source"]: r for r in rows}
    assert len(by) == len(rows), "every input once"
    return by


def test_ledger_accounts_for_every_exam_and_record(built):
    export, _, root, _, _ = built
    ledger = _ledger(root / "ds")
    exams = {f"exams/{r['exam_id']}" for r in _jsonl(export / "exams.jsonl")}
    records = {f"records/{r['record_id']}" for r in _jsonl(export / "records.jsonl")}
    assert set(ledger) == exams | records
    for row in ledger.values():
        assert row["status"] in ("used", "excluded") and (row["status"] == "used") == (row["reason"] is None)


def test_planted_duplicates_dropped_and_hard_negatives_kept_apart(built):
    _, truth, root, _, result = built
    ledger = _ledger(root / "ds")
    pairs = _jsonl(truth / "duplicates.jsonl")
    dups = [p for p in pairs if p["kind"] == "duplicate"]
    assert dups and result["card"]["dedup"]["removed"] >= 1
    checked = Counter()
    for p in pairs:
        a, b = ledger[f"records/{p['copy']}"], ledger[f"records/{p['original']}"]
        if any((r["reason"] or "").startswith(("missing_output", "too_long")) for r in (a, b)):
            continue   # a defect planted in one of the two removed it before deduplication
        checked[p["kind"]] += 1
        near = [r for r in (a, b) if (r["reason"] or "").startswith("near_duplicate")]
        if p["kind"] == "duplicate":
            assert len(near) == 1, p
            other = p["original"] if near[0] is a else p["copy"]
            assert f"records/{other} (kept)" in near[0]["reason"]
        else:
            assert not any(f"records/{p['original']} " in r["reason"] for r in near if r is a), p
            assert not any(f"records/{p['copy']} " in r["reason"] for r in near if r is b), p
    assert checked["duplicate"] >= 1, checked


def test_defective_records_dropped_with_their_reason(built):
    _, truth, root, _, _ = built
    ledger = _ledger(root / "ds")
    defects = {r["record_id"]: r["defects"] for r in _jsonl(truth / "labels.jsonl") if r["defects"]}
    assert any("overlong" in d for d in defects.values())
    assert any(x.startswith("missing_output") for d in defects.values() for x in d)
    for rid, d in defects.items():
        reason = ledger[f"records/{rid}"]["reason"] or ""
        if any(x.startswith("missing_output") for x in d):
            section = next(x for x in d if x.startswith("missing_output")).split(":")[1]
            assert reason.startswith("missing_output") and section in reason, (rid, reason)
        elif "overlong" in d:
            assert reason.startswith("too_long") and "> 4000" in reason, (rid, reason)


def test_stages_honour_thresholds_and_hold_no_benchmark_patient(built):
    _, _, root, cfg, result = built
    ds = root / "ds"
    th = result["card"]["thresholds"]
    bench = load_samples(ds / "benchmark")
    bench_patients = {s["patient_id"] for s in bench}
    assert bench and Counter(s["task"] for s in bench)["outpatient"] <= SMALL_BENCH.outpatient
    for stage in STAGES:
        samples = load_samples(ds / stage)
        assert samples, stage
        assert not bench_patients & {s["patient_id"] for s in samples}, stage
        by = Counter((s["task"], s["categories"][0]) for s in samples)
        for (task, _cat), n in by.items():
            if stage == "stage3" and task in ("xray_report", "outpatient"):
                assert n <= th[f"stage3_{'xray' if task == 'xray_report' else 'outpatient'}_cap"]
            if stage == "stage2" and task == "outpatient":
                assert n <= th["stage2_outpatient_cap"]
        if stage == "stage1":
            assert set(t for t, _ in by) <= {"outpatient", "xray_report", "ct_report"}
    manifest = json.loads((ds / "manifest.json").read_text())
    assert manifest["counts"]["benchmark"] == len(bench)
    assert manifest["cache"] == "../cache", "the cache is named relative to the dataset, never absolutely"


def test_conversations_hold_one_modality_of_one_visit_in_time_order(built):
    export, _, root, _, _ = built
    times = {r["exam_id"]: r["exam_time"] for r in _jsonl(export / "exams.jsonl")}
    exams = {r["exam_id"]: r for r in _jsonl(export / "exams.jsonl")}
    multi = 0
    for folder in STAGES + ("benchmark",):
        for s in load_samples(root / "ds" / folder):
            ids = [t["source_id"] for t in s["turns"]]
            for t in s["turns"]:
                assert t["human"].count("<image>") == len(t["images"])
                assert t["assistant"] and all(t["target"].values())
            if s["modality"]:
                assert [times[i] for i in ids] == sorted(times[i] for i in ids)
                assert {exams[i]["visit_id"] for i in ids} == {s["visit_id"]}
                assert {exams[i]["modality"] for i in ids} == {s["modality"]}
                assert sum(len(t["images"]) for t in s["turns"]) == len(s["images"])
                multi += len(ids) > 1
            else:
                assert len(ids) == 1 and not s["images"]
    assert multi >= 1, "the synthetic hospital has follow-ups: some conversations have several rounds"


def test_build_is_deterministic_and_written_whole(built, tmp_path):
    export, _, root, cfg, _ = built
    build_dataset(export, root / "cache", tmp_path / "again", cfg)
    for folder in STAGES + ("benchmark",):
        assert load_samples(root / "ds" / folder) == load_samples(tmp_path / "again" / folder), folder
    files = json.loads((root / "ds" / "manifest.json").read_text())["files"]
    import hashlib
    for f in files:
        assert hashlib.sha256((root / "ds" / f["path"]).read_bytes()).hexdigest() == f["sha256"], f["path"]
    assert not list((root / "ds").rglob("*.tmp*")), "no temporary file left"
    card = (root / "ds" / "data_card.md").read_text(encoding="utf-8")
    assert "stage3" in card and "![" in card
    assert all((root / "ds" / "data_card" / f"{s}_categories.png").is_file() for s in STAGES)


def test_imcs21_text_gets_categories_and_dedup(tmp_path):
    from p2med.importers.run import import_folder

    src = shared_data("imcs21_mrg_1000")
    import_folder("imcs21", src, tmp_path / "export")
    bench = BenchmarkConfig(xray_single=0, xray_mrc_patients=0, ct_report=0, outpatient=50, first_course=0,
                            attending_round=0, chief_round=0, max_patient_share=0.2)
    result = build_dataset(tmp_path / "export", None, tmp_path / "ds", BuildConfig(scale=0.05, benchmark=bench))
    card = result["card"]
    ledger = _ledger(tmp_path / "ds")
    dropped_before = sum((r["reason"] or "").startswith(("missing_output", "too_long", "no_inputs"))
                         for r in ledger.values())
    assert card["dedup"]["records"] == len(ledger) - dropped_before > 600, "every valid record went through dedup"
    assert card["dedup"]["removed"] == sum((r["reason"] or "").startswith("near_duplicate") for r in ledger.values())
    samples = load_samples(tmp_path / "ds" / "stage1") + load_samples(tmp_path / "ds" / "benchmark")
    assert samples and all(s["task"] == "outpatient" for s in samples)
    mapped = sum(s["categories"][0] != "未分类" for s in samples)
    assert mapped / len(samples) > 0.9, (mapped, len(samples), card["unmapped"])
    records = _jsonl(tmp_path / "export" / "records.jsonl")
    assert len(ledger) == len(records)
