"""The finding extractor on real Chinese CT reports (hand-checked) and on every planted synthetic combination;
negation, uncertainty, change states; per-finding precision/recall/F1."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest

from conftest import shared_data
from p2med.clinical.findings import FindingExtractor, changes, present
from p2med.clinical.scoring import PRF, ClinicalScorer, Tally
from p2med.synth.findings import PATTERNS, SIDES, ZONES, Finding, ct_valid
from p2med.synth.reports import CHANGES, Change, write_report

X = FindingExtractor()
R, L = "right", "left"
U, M, D = "upper", "middle", "lower"

# Read by hand from ../shared/data/cov_ctr_reports_zh_excerpt (影像所见): image id suffix -> findings present.
HAND_CHECKED = {
    # 右肺上叶胸膜下可见小斑片及片状磨玻璃影
    "p3-89%0.png": {("patchy", R, U), ("ggo", R, U)},
    # 双肺上叶可见片状磨玻璃影，边缘不清，右肺上叶胸膜下见斑片状实变影
    "p3-91.png": {("ggo", R, U), ("ggo", L, U), ("consolidation", R, U)},
    # 右肺中叶、左肺上叶舌段及双肺下叶胸膜下可见斑片及小片影
    "p27-133.png": {("patchy", R, M), ("patchy", L, U), ("patchy", R, D), ("patchy", L, D)},
    # 双肺上叶胸膜下可见片状磨玻璃影， 边缘模糊；右肺下叶背段见小斑片及条片影
    "p6-52%2.png": {("ggo", R, U), ("ggo", L, U), ("patchy", R, D), ("linear", R, D)},
    # 双肺上叶及下叶背段可见大片状磨玻璃影及斑片状实变影
    "p6-52%5.png": {(p, s, lv) for p in ("ggo", "consolidation") for s in (R, L) for lv in (U, D)},
    # 双肺上叶及下叶可见玻璃影及条片状实变影
    "p6-52%14.png": {(p, s, lv) for p in ("ggo", "consolidation") for s in (R, L) for lv in (U, D)},
    # 右肺中叶、左肺上叶及双肺下叶可见磨玻璃影，右肺下叶见小斑片状实变影
    "p16-109%0.png": {("ggo", R, M), ("ggo", L, U), ("ggo", R, D), ("ggo", L, D), ("consolidation", R, D)},
    # 左肺下叶后基底段见局限性磨玻璃影
    "p16-109%2.png": {("ggo", L, D)},
}


@pytest.fixture(scope="module")
def cov_reports():
    path = shared_data("cov_ctr_reports_zh_excerpt") / "reports_ZH_EN.first27.csv"
    with open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.shared
def test_real_ct_reports_hand_checked(cov_reports):
    seen = 0
    for row in cov_reports:
        for suffix, expected in HAND_CHECKED.items():
            if row["image_id"].endswith(suffix):
                assert present(X.extract(row["findings"])) == expected, row["findings"]
                seen += 1
    assert seen == len(HAND_CHECKED)


@pytest.mark.shared
def test_real_ct_reports_negation(cov_reports):
    for row in cov_reports:
        ms = X.extract(row["findings"])
        assert present(ms), row["findings"]  # every report describes a lesion
        assert not any(k[0] in ("effusion", "lymphadenopathy") for k in present(ms))  # 未见肿大淋巴结, 胸腔未见...
        if "未见肿大淋巴结" in row["findings"]:
            assert any(m.pattern == "lymphadenopathy" and m.negated for m in ms)
        assert all(m.site_kind == "lobe" for m in ms if m.level)


def _key(f: Finding) -> tuple:
    return (f.pattern, f.side, None if f.pattern == "effusion" else f.zone)


def _planted():
    for modality in ("XR", "CT"):
        for pattern, side, zone in itertools.product(PATTERNS, SIDES, ZONES):
            try:
                f = Finding(pattern, side, zone)
            except ValueError:
                continue
            if modality == "XR" or ct_valid(f):
                yield modality, f


def test_every_planted_pattern_side_location():
    n = 0
    for modality, f in _planted():
        for seed in range(4):  # the writer picks among several sentences per pattern
            rng = np.random.default_rng(seed)
            findings, impression = write_report(rng, modality, [f], views=1 + seed % 2, contrast=seed % 2 == 1)
            for text in (findings, impression):
                ms = X.extract(text)
                assert present(ms) == {_key(f)}, text
                kinds = {m.site_kind for m in ms if m.level}
                assert kinds <= {"zone" if modality == "XR" else "lobe"}
                n += 1
    assert n > 100


def test_every_change_state():
    for modality, f in _planted():
        for state in CHANGES:
            current = None if state == "resolved" else f
            change = Change(current, None if state == "new" else f, state)
            findings, impression = write_report(np.random.default_rng(0), modality, [current] if current else [],
                                                [change], prior_date="2022-05-01")
            for text in (findings, impression):
                ms = X.extract(text)
                assert changes(ms) == {_key(f) + (state,)}, text
                assert present(ms) == (set() if state == "resolved" else {_key(f)}), text


def test_two_findings_and_normal_reports():
    a, b = Finding("consolidation", "left", "lower"), Finding("effusion", "right", "lower")
    for modality in ("XR", "CT"):
        for seed in range(5):
            rng = np.random.default_rng(seed)
            findings, impression = write_report(rng, modality, [a, b])
            assert present(X.extract(findings)) == present(X.extract(impression)) == {_key(a), _key(b)}
            normal_f, normal_i = write_report(rng, modality, [])
            assert present(X.extract(normal_f)) == present(X.extract(normal_i)) == set()


def test_negation_and_uncertainty():
    ms = X.extract("双肺纹理稍增多，未见明显斑片影及实变影。双侧胸腔未见积液。")
    assert ms and all(m.negated for m in ms) and not present(ms)
    ms = X.extract("右肺下叶斑片影，不除外实变")
    assert [(m.pattern, m.negated, m.uncertain) for m in ms] == [("patchy", False, False), ("consolidation", False, True)]
    assert ("consolidation", "right", "lower") in present(ms)  # hedged findings still count as mentioned
    en = X.extract("No pleural effusion or pneumothorax. Right lower lobe opacity.", "en")
    assert present(en) == {("patchy", "right", "lower")}


def test_prf_and_scorer():
    s = ClinicalScorer()
    out = s.findings("右肺下野斑片影。", "右肺下野斑片影，左侧胸腔积液。")
    assert (out["full"].tp, out["full"].fp, out["full"].fn) == (1, 1, 0)
    assert out["full"].precision == 0.5 and out["full"].recall == 1.0
    out = s.findings("右肺下野斑片影，右侧胸腔积液。", "左肺下野斑片影。")
    assert out["pattern"].f1 == pytest.approx(2 / 3) and out["full"].tp == 0
    assert (out["critical_total"], out["critical_missed"]) == (1, 1)
    both_normal = s.findings("心肺膈未见明显异常。", "双肺纹理清晰，未见斑片影。")
    assert both_normal["full"].f1 == 1.0 and both_normal["change"] is None
    prf, ref, cand = s.diagnoses("1.支原体肺炎；2.心肌损害", "支原体肺炎可能")
    assert (ref, cand) == (["支原体肺炎", "心肌损害"], ["支原体肺炎"]) and prf.recall == 0.5
    assert PRF().f1 == 1.0 and PRF(fn=2).precision == 0.0 and PRF(fp=1).recall == 0.0


def test_tally_micro_macro():
    t = Tally(classify=lambda k: k[0])
    t.add({("a", 1), ("b", 1)}, {("a", 1)})
    t.add({("a", 2)}, {("a", 2), ("b", 2)})
    js = t.to_json()
    assert js["micro"]["tp"] == 2 and js["micro"]["fp"] == 1 and js["micro"]["fn"] == 1
    assert js["per_class"]["a"]["f1"] == 1.0 and js["per_class"]["b"]["f1"] == 0.0
    assert js["per_class"]["b"]["support"] == 1 and js["macro"]["f1"] == 0.5
