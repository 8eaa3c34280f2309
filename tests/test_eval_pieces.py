"""Small pieces of evaluation: age bands, benchmark quarantine reasons, components, MCQ answer parsing,
reliability figures on hand-made judge rows."""

from __future__ import annotations

import json

import pytest

from p2med.eval.benchmark import age_band, components, load_benchmark
from p2med.eval.mcq import as_sample, parse_choice, sample_items
from p2med.eval.reliability import clinician_agreement, length_bias, position_bias, repeat_variance
from p2med.eval.stats import weighted_kappa


def test_age_bands_at_their_edges():
    assert [age_band(d) for d in (0, 27, 28, 364, 365, 3 * 365, 3 * 365 + 1, 12 * 365 + 2, 12 * 365 + 3,
                                   18 * 365 + 3)] == ["neonate", "neonate", "infant", "infant", "toddler", "toddler",
                                                      "child", "child", "adolescent", "adolescent"]
    assert age_band(None) == "unknown" and age_band(20 * 365) == "adult"


def test_components_follow_the_paper():
    assert components("ct_report", ["findings", "impression"]) == [
        ("findings", ("accuracy",)), ("impression", ("accuracy", "comprehensiveness"))]
    assert components("chief_round", ["current_diagnosis"]) == [("current_diagnosis", ("accuracy", "comprehensiveness"))]


def test_malformed_benchmark_lines_are_quarantined_with_line_and_field(tmp_path):
    good = {"sample_id": "s1", "task": "outpatient", "lang": "zh", "output_keys": ["preliminary_diagnosis"],
            "turns": [{"human": "主诉", "assistant": "x", "target": {"preliminary_diagnosis": "肺炎"}}]}
    lines = [json.dumps(good), "{not json", json.dumps({**good, "sample_id": "s2", "task": "triage"}),
             json.dumps({**good, "sample_id": "s3", "output_keys": ["impression"]}), json.dumps(good)]
    (tmp_path / "samples.jsonl").write_text("\n".join(lines), encoding="utf-8")
    samples, bad = load_benchmark(tmp_path)
    assert [s.sample_id for s in samples] == ["s1"]
    reasons = dict(bad)
    assert "line 2" in reasons["line 2"] and reasons["line 2"].startswith("bad_json")
    assert "task 'triage'" in reasons["s2"] and "every output key" in reasons["s3"]
    assert "repeats an earlier line" in reasons["line 5"]


def test_mcq_answer_parsing_and_seeded_sample():
    assert parse_choice("答案：D", "ABCDE") == "D" and parse_choice("The answer is B.", "ABCD") == "B"
    assert parse_choice("无法回答", "ABCD") is None and parse_choice("E", "ABCD") is None
    items = [{"id": f"q{i}", "question": "?", "options": {"A": "1", "B": "2"}, "answer": "A"} for i in range(50)]
    assert sample_items(items, 10, 0) == sample_items(items, 10, 0) != sample_items(items, 10, 1)
    s = as_sample(items[0])
    assert s["task"] == "mcq" and "A. 1" in s["turns"][0]["human"] and not s["images"]


def _row(sid, metric, variant, score):
    return {"sample_id": sid, "component": "impression", "metric": metric, "variant": variant, "score": score}


def test_reliability_figures_on_hand_made_rows():
    rows = [_row(f"s{i}", "accuracy", "main", 3) for i in range(6)]
    rows += [_row(f"s{i}", "accuracy", "swapped", 4 if i < 3 else 3) for i in range(6)]
    rows += [_row("s0", "accuracy", "repeat1", 5), _row("s1", "accuracy", "repeat1", 3),
             _row("s5", "accuracy", "swapped", None)]
    pb = position_bias(rows, n_resamples=200)["accuracy"]
    assert pb["n"] == 6 and pb["mean_diff"] == 0.5 and pb["share_changed"] == 0.5
    rv = repeat_variance(rows)["accuracy"]
    assert rv["items"] == 2 and rv["share_varying"] == 0.5 and rv["mean_range"] == 1.0
    clin = [{"sample_id": f"s{i}", "component": "impression", "metric": "accuracy", "score": s, "rater": "dr"}
            for i, s in enumerate([3, 3, 4, 2, 3, 3])]
    ag = clinician_agreement(clin, rows)["raters"]["dr"]
    assert ag["n"] == 6 and ag["kappa_quadratic"] == weighted_kappa([3] * 6, [3, 3, 4, 2, 3, 3])
    items = [{"lang": "zh", "candidate": "肺" * n, "reference": "肺炎", "metrics": {"judge_accuracy": s},
              "judge": {"accuracy": "ok"}} for n, s in ((1, 2), (2, 3), (4, 4), (8, 5))]
    lb = length_bias(items)["accuracy"]
    assert lb["spearman_length"] == pytest.approx(1.0) and lb["n_longer"] == 2


def test_answer_headers_a_model_may_write():
    from p2med.text.sections import parse_sections

    p = parse_sections("影像学表现：右肺下叶斑片影\n检查结论：支气管肺炎", ["findings", "impression"])
    assert p.sections == {"findings": "右肺下叶斑片影", "impression": "支气管肺炎"}
    keys = ["diagnostic_basis", "current_diagnosis", "diagnosis_treatment_plan"]
    p = parse_sections("诊断根据：发热\n当前诊断：肺炎\n诊疗方案：抗感染", keys)
    assert p.sections == {"diagnostic_basis": "发热", "current_diagnosis": "肺炎", "diagnosis_treatment_plan": "抗感染"}
