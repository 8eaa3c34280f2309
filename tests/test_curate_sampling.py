"""Stage samplers honour SPEC section 3's thresholds; the benchmark round-robin maximises coverage;
review verdicts drop rejected samples and report agreement; prompts render as SPEC section 4 says."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from p2med.curate.benchmark import round_robin
from p2med.curate.config import BuildConfig, Thresholds
from p2med.curate.prompts import Prompts
from p2med.curate.review import apply_review, cohen_kappa
from p2med.curate.sampling import Unit, stage1, stage2, stage3
from p2med.curate.tokens import TokenCounter


def _units(task: str, sizes: dict[str, int]) -> list[Unit]:
    return [Unit(f"{task}/{cat}/{i}", task, cat) for cat, n in sizes.items() for i in range(n)]


TH = Thresholds().scaled(0.1)   # 33..500 outpatient, cap 50; inpatient > 4; x-ray 10..200 cap 50; ...


def test_scaled_thresholds():
    assert TH["stage2_outpatient_min"] == 33 and TH["stage2_outpatient_cap"] == 50
    assert Thresholds().scaled(1.0)["stage2_inpatient_min"] == 41
    assert all(v >= 1 for v in Thresholds().scaled(1e-6).values())


def test_stage2_balances_outpatient_to_the_inpatient_total():
    units = (_units("outpatient", {"A": 600, "B": 40, "C": 20, "D": 501}) +
             _units("first_course", {"A": 30, "B": 4}) + _units("attending_round", {"A": 40}) +
             _units("xray_report", {"A": 7}))
    s2 = stage2(units, TH, seed=0)
    by = Counter((u.task, u.category) for u in s2)
    inpatient = by[("first_course", "A")] + by[("attending_round", "A")]
    assert by[("first_course", "B")] == 0, "4 samples is not over 40 x 0.1"
    assert inpatient == 70
    out = {c: by[("outpatient", c)] for c in "ABCD"}
    assert out["A"] == 0 and out["D"] == 0, "categories above the 5,000 x 0.1 bound are not sampled"
    assert out["C"] == 0, "categories below 325 x 0.1 are not sampled"
    assert out["B"] == 40, "B gives everything it has (under the cap) towards the inpatient total"
    assert by[("xray_report", "A")] == 7
    assert len({u.key for u in s2}) == len(s2), "without repetition"


def test_stage2_round_robin_respects_cap_and_target():
    units = _units("outpatient", {"A": 200, "B": 200}) + _units("first_course", {"X": 300})
    s2 = stage2(units, TH, seed=1)
    out = Counter(u.category for u in s2 if u.task == "outpatient")
    assert out == {"A": 50, "B": 50}, "capped at 500 x 0.1 per category before reaching 300"
    th = dict(TH, stage2_outpatient_cap=1000)
    out = Counter(u.category for u in stage2(units, th, seed=1) if u.task == "outpatient")
    assert sum(out.values()) == 300 and abs(out["A"] - out["B"]) <= 1


def test_stage3_thresholds_and_caps():
    units = (_units("xray_report", {"A": 300, "B": 5, "C": 150}) + _units("ct_report", {"A": 3}) +
             _units("outpatient", {"A": 100}) + _units("chief_round", {"A": 4, "B": 30, "C": 60}))
    s3 = stage3(units, TH, seed=0)
    by = Counter((u.task, u.category) for u in s3)
    assert by[("xray_report", "A")] == 0, "300 > 2,000 x 0.1"
    assert by[("xray_report", "B")] == 0 and by[("xray_report", "C")] == 50
    assert by[("ct_report", "A")] == 3
    assert by[("outpatient", "A")] == 20
    assert by[("chief_round", "A")] == 4 and by[("chief_round", "B")] == 30 and by[("chief_round", "C")] == 0


def test_stages_are_deterministic_and_order_independent():
    units = _units("outpatient", {"A": 100, "B": 90}) + _units("first_course", {"X": 60})
    a = stage2(units, TH, seed=3)
    b = stage2(list(reversed(units)), TH, seed=3)
    assert sorted(u.key for u in a) == sorted(u.key for u in b)
    assert stage1(units) == [u for u in units if u.task == "outpatient"]


def test_round_robin_covers_rare_categories_first():
    class It:
        def __init__(self, pid):
            self.patient_id = pid
    cands = [("common", f"c{i}", [It(f"p{i}")]) for i in range(50)] + [("rare", "r0", [It("q")])]
    picked = round_robin(cands, 2, np.random.default_rng(0))
    assert {t[-1].patient_id for t in picked} >= {"q"}
    one_per_patient = round_robin(cands + [("rare", "r1", [It("q")])], 10, np.random.default_rng(0), set())
    assert len({t[-1].patient_id for t in one_per_patient}) == len(one_per_patient)


def test_prompts_follow_spec_and_config_checks():
    p = Prompts.load()
    text = p.radiology("zh", "CT", "2023-01-02", 400, 2)
    assert text.count("<image>") == 2 and "2023-01-02" in text and "1岁1月" in text and "【影像所见】" in text
    en = p.radiology("en", "XR", "2023-01-02", 40, 1)
    assert en.startswith("Current radiological data is as follows: [Examination time] 2023-01-02 (patient age 1 month)")
    assert "[Findings] ... [Impression] ..." in en
    from p2med.config import ConfigError
    with pytest.raises(ConfigError, match="radiology"):
        Prompts(zh={**p.zh, "radiology": "no placeholders"})


def test_token_proxy():
    c = TokenCounter(None)
    # 咳 嗽 3 天 | cough | , | 2 | x
    assert c.count("咳嗽3天 cough, 2x") == 4 + 1 + 1 + 1 + 1
    assert BuildConfig().max_tokens == 4000


def test_review_drops_rejects_and_reports_kappa(tmp_path):
    samples = [{"sample_id": f"s{i}", "turns": []} for i in range(4)]
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    sheet = tmp_path / "review.csv"
    sheet.write_text("sample_id,reviewer_1_verdict,reviewer_2_verdict\n"
                     "s0,accept,accept\ns1,accept,reject\ns2,reject,reject\ns3,accept,\n", encoding="utf-8")
    summary = apply_review(tmp_path, sheet)
    kept = [json.loads(l)["sample_id"] for l in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert kept == ["s0", "s3"] and summary["rejected"] == 2 and summary["double_reviewed"] == 3
    assert summary["percent_agreement"] == pytest.approx(2 / 3)
    assert summary["cohen_kappa"] == pytest.approx(cohen_kappa(["accept", "accept", "reject"],
                                                               ["accept", "reject", "reject"]))
    sklearn = pytest.importorskip("sklearn.metrics")
    assert summary["cohen_kappa"] == pytest.approx(sklearn.cohen_kappa_score(["accept", "accept", "reject"],
                                                                             ["accept", "reject", "reject"]))
    apply_review(tmp_path, sheet)   # idempotent: starts again from the unreviewed set
    assert len((tmp_path / "samples.jsonl").read_text().splitlines()) == 2
