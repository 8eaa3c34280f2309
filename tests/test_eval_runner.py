"""The evaluation runner end to end on a benchmark in the documented format: honest "not run", missing sections
counted, judge failures counted, planted position bias found, resumable and deterministic, text-only baseline
marked not applicable, clinician agreement, knowledge check, paired comparison of two runs."""

from __future__ import annotations

import json
import re

import pytest

from eval_helpers import FakeGenerator, FakeJudgeServer, write_benchmark
from p2med.common.errors import P2MedError
from p2med.common.ledger import read_manifest
from p2med.config import load_config
from p2med.eval.compare import compare_runs
from p2med.eval.config import EvalConfig
from p2med.eval.exemplars import load_exemplars
from p2med.eval.judge import Judge
from p2med.eval.judge_backends import OpenAIBackend
from p2med.eval.runner import evaluate

CFG = load_config(EvalConfig, None, ["bootstrap_resamples=200"])


def _ledger(run):
    return [json.loads(line) for line in (run / "ledger.jsonl").read_text(encoding="utf-8").splitlines()]


def _all_metric_names(results):
    return {m for comps in results["summary"].values() for cells in comps.values() for m in cells}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return write_benchmark(tmp_path_factory.mktemp("dataset"), bad_line=True)


@pytest.fixture(scope="module")
def perfect_run(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("perfect")
    return out, evaluate(FakeGenerator("perfect"), bench, out, CFG, progress=False)


def test_without_a_judge_nothing_is_invented(perfect_run):
    out, res = perfect_run
    assert res["judge"]["status"] == "not run" and res["reliability"]["status"] == "not run"
    assert not any(m.startswith("judge_") for m in _all_metric_names(res))
    text = (out / "results.json").read_text(encoding="utf-8")
    assert "judge_accuracy" not in text
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "not run" in html and "<svg" in html
    assert "<script" not in html and "<link" not in html and "<img" not in html  # self-contained
    assert not re.search(r'(?:src|href)\s*=\s*"(?!#)', html) and not re.search(r"url\((?!#)", html)
    for comps in res["summary"].values():  # the reference scores perfectly on every text metric
        for cells in comps.values():
            assert cells["rouge_l"]["mean"] == 1.0 and cells["bleu4"]["mean"] == 1.0
            for m in ("finding_f1", "diagnosis_f1"):
                assert m not in cells or cells[m]["mean"] == 1.0


def test_counts_ledger_manifest(perfect_run, bench):
    out, res = perfect_run
    rows = _ledger(out)
    sources = [r["source"] for r in rows]
    assert len(sources) == len(set(sources)) == res["benchmark"]["samples"] + 1
    assert [r["status"] for r in rows].count("quarantined") == 1
    bad = next(r for r in rows if r["status"] == "quarantined")
    assert bad["reason"].startswith("bad_sample:") and "line 4" in bad["reason"]
    assert sum(1 for r in rows if r["status"] == "used") == res["benchmark"]["evaluated"] == 14
    manifest = read_manifest(out)
    names = {f["path"] for f in manifest["files"]}
    assert {"results.json", "report.md", "report.html", "scores.jsonl", "generations.jsonl", "ledger.jsonl"} <= names
    assert res["benchmark"]["tasks"] == {"ct_report": 3, "xray_report": 3, "outpatient": 2, "first_course": 2,
                                         "attending_round": 2, "chief_round": 2}
    assert len([c for comps in res["summary"].values() for c in comps]) == 16  # the paper's 16 components
    assert set(res["breakdown"]["age_band"]) == {"neonate", "infant", "toddler", "child", "adolescent"}
    assert res["critical_findings"]["miss_rate"] == 0.0 and res["critical_findings"]["critical_findings"] > 0


@pytest.fixture(scope="module")
def judged_run(bench, tmp_path_factory):
    with FakeJudgeServer() as server:
        out = tmp_path_factory.mktemp("flawed")
        judge = Judge(OpenAIBackend(server.url, "fake-judge", timeout_s=5), load_exemplars(), max_retries=1)
        cfg = load_config(EvalConfig, None, ["bootstrap_resamples=200", "judge.repeats=2", "judge.repeat_subset=3"])
        clin = out.parent / "clinicians.csv"
        clin.write_text("sample_id,component,metric,score,rater\n"
                        "xray_report/V0/1,impression,accuracy,3,dr_a\nxray_report/V1/1,findings,accuracy,3,dr_a\n"
                        "outpatient/R00,preliminary_diagnosis,accuracy,2,dr_a\nfirst_course/R10,diagnostic_basis,"
                        "accuracy,5,dr_a\nxray_report/V0/1,impression,accuracy,4,dr_b\nnot/there,findings,accuracy,1,dr_b\n",
                        encoding="utf-8")
        gen = FakeGenerator("flawed")
        res = evaluate(gen, bench, out, cfg, judge, clinician_scores=clin, progress=False)
        n_requests = len(server.requests)
        again = evaluate(gen, bench, out, cfg, judge, clinician_scores=clin, progress=False)
        yield out, res, again, gen, n_requests, len(server.requests)


def test_judge_scores_failures_and_missing_sections(judged_run, bench):
    out, res, *_ = judged_run
    s, c = res["summary"], res["counts"]
    refs = [json.loads(l)["turns"][-1]["target"]["impression"] for l in (bench / "samples.jsonl").read_text(
        encoding="utf-8").splitlines() if l.startswith('{"sample_id": "xray_report')]
    expected = sum(3 if "右" in r else 5 for r in refs) / len(refs)  # the flawed model writes 左 for 右
    assert s["xray_report"]["impression"]["judge_accuracy"]["mean"] == pytest.approx(expected, abs=1e-6)
    assert s["first_course"]["admission_diagnosis"]["judge_accuracy"]["mean"] == 5.0
    # CT impressions were not written: counted, floored at 1 by rule (no judge call), metrics 0
    assert c["ct_report"]["impression"]["missing_section"] == 3
    assert c["ct_report"]["impression"]["judge"]["accuracy"] == {"ok": 0, "failed": 0, "missing_section": 3}
    assert s["ct_report"]["impression"]["judge_accuracy"]["mean"] == 1.0 and s["ct_report"]["impression"]["rouge_l"]["mean"] == 0
    # the garbage-answering item: failed after its retries, unscored (n=0), counted, raw outputs kept
    assert c["chief_round"]["diagnosis_treatment_plan"]["judge"]["accuracy"]["failed"] == 2
    assert s["chief_round"]["diagnosis_treatment_plan"]["judge_accuracy"]["n"] == 0
    raw = [json.loads(l) for l in (out / "judge_raw.jsonl").read_text(encoding="utf-8").splitlines()]
    failed = [r for r in raw if r["score"] is None and r["variant"] == "main"]
    assert len(failed) == 2 and all(len(r["attempts"]) == 2 and r["attempts"][0]["raw"] == "嗯。" for r in failed)
    assert s["outpatient"]["preliminary_diagnosis"]["diagnosis_f1"]["mean"] < 1.0
    assert s["xray_report"]["findings"]["finding_f1"]["mean"] < s["xray_report"]["findings"]["finding_f1_pattern"]["mean"]


def test_reliability_finds_the_planted_position_bias(judged_run):
    out, res, *_ = judged_run
    rel = res["reliability"]
    raw = [json.loads(l) for l in (out / "judge_raw.jsonl").read_text(encoding="utf-8").splitlines()]
    main = {(r["sample_id"], r["component"], r["metric"]): r["score"] for r in raw if r["variant"] == "main"}
    judged = [v for v in main.values() if v is not None]
    expected = sum(v < 5 for v in judged) / len(judged)  # the fake judge adds 1 when the candidate comes first
    pb = rel["position_bias"]
    n_all = sum(v["n"] for v in pb.values())
    assert n_all == len(judged)
    assert sum(v["mean_diff"] * v["n"] for v in pb.values()) / n_all == pytest.approx(expected, abs=1e-5)
    assert rel["repeat_variance"]["accuracy"]["items"] > 0  # temperature does nothing to the fake: no spread
    assert rel["repeat_variance"]["accuracy"]["mean_sd"] == 0.0
    ca = rel["clinician_agreement"]
    assert ca["raters"]["dr_a"]["n"] == 4 and ca["raters"]["dr_b"]["n"] == 1 and ca["unmatched_rows"] == 1
    assert ca["between_raters"]["dr_a vs dr_b"]["n"] == 1
    assert set(rel["length_bias"]) == {"accuracy", "comprehensiveness"}


def test_resume_adds_nothing_and_is_identical(judged_run):
    out, res, again, gen, n_requests, n_after = judged_run
    assert gen.calls == 4  # 14 samples in batches of 4; none on the resumed run
    assert n_after == n_requests  # every judging came from judge_raw.jsonl
    assert res == again


def test_output_does_not_depend_on_the_folder(bench, perfect_run, tmp_path):
    out, res = perfect_run
    other = tmp_path / "deep" / "elsewhere"
    evaluate(FakeGenerator("perfect"), bench, other, CFG, progress=False)
    for name in ("results.json", "report.html", "report.md", "scores.jsonl", "generations.jsonl", "ledger.jsonl"):
        assert (other / name).read_bytes() == (out / name).read_bytes(), name


def test_text_only_model_marks_image_tasks_not_applicable(bench, tmp_path):
    res = evaluate(FakeGenerator("perfect", supports_images=False), bench, tmp_path / "run", CFG, progress=False)
    assert res["not_applicable"] == {"ct_report": 3, "xray_report": 3}
    assert "xray_report" not in res["summary"] and res["benchmark"]["evaluated"] == 8
    excluded = [r for r in _ledger(tmp_path / "run") if r["status"] == "excluded"]
    assert len(excluded) == 6 and all(r["reason"].startswith("not_applicable:") for r in excluded)
    assert "not applicable" in (tmp_path / "run" / "report.md").read_text(encoding="utf-8")


def test_a_run_folder_of_another_model_is_refused(perfect_run, bench):
    out, _ = perfect_run
    with pytest.raises(P2MedError, match="another model"):
        evaluate(FakeGenerator("flawed"), bench, out, CFG, progress=False)


@pytest.mark.shared
def test_knowledge_check_and_before_after_compare(bench, tmp_path):
    from conftest import shared_data

    medqa, cmmlu = shared_data("medqa_mcmle"), shared_data("cmmlu_medical")
    cfg = load_config(EvalConfig, None, ["bootstrap_resamples=200", "mcq_limit=12"])
    specs = [f"medqa={medqa / 'test.jsonl'}", f"cmmlu={cmmlu}"]
    a = evaluate(FakeGenerator("perfect"), bench, tmp_path / "a", cfg, mcq_sources=specs, progress=False)
    rows = [json.loads(l) for l in (tmp_path / "a" / "mcq.jsonl").read_text(encoding="utf-8").splitlines()]
    assert a["mcq"]["medqa"]["questions"] == a["mcq"]["cmmlu"]["questions"] == 12
    medqa_rows = [r for r in rows if r["id"].startswith("medqa")]
    assert a["mcq"]["medqa"]["accuracy"]["mean"] == pytest.approx(sum(r["answer"] == "A" for r in medqa_rows) / 12,
                                                                   abs=1e-6)  # the fake always answers A
    evaluate(FakeGenerator("flawed"), bench, tmp_path / "b", cfg, mcq_sources=specs, progress=False)
    cmp = compare_runs(tmp_path / "a", tmp_path / "b", n_resamples=200)
    assert cmp["mcq"]["medqa"]["n"] == 12 and cmp["mcq"]["medqa"]["mean_diff"] == 0.0
    xr = cmp["paired"]["xray_report"]["findings"]["rouge_l"]
    assert xr["n"] == 3 and xr["mean_diff"] < 0 and xr["bootstrap_ci_high"] <= 0
    assert cmp["paired"]["first_course"]["admission_diagnosis"]["rouge_l"]["mean_diff"] == 0.0
