"""The category normaliser: the synthetic diseases and their synonyms, IMCS-21 diagnoses and real CT
impressions map; negation, uncertainty, attributes, multi-label order; unmapped fragments reported."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import shared_data
from p2med.clinical.categories import CategoryConfig, CategoryNormaliser
from p2med.config import ConfigError, from_dict
from p2med.synth.diseases import DISEASES_LIST, SECONDARY


@pytest.fixture(scope="module")
def norm():
    return CategoryNormaliser.from_yaml()


def test_every_synthetic_disease_and_synonym(norm):
    for d in DISEASES_LIST:
        for term in (d.name, *d.synonyms):
            assert norm.normalise(term).categories == [d.name], term
        assert norm.normalise(d.en, "en").categories == [d.name], d.en
    secondary = {"心肌损害": "心肌损害", "肝功能损害": "肝功能损害", "轻度贫血": "贫血", "低钾血症": "低钾血症", "腹泻病": "腹泻"}
    assert set(secondary) == set(SECONDARY)
    res = norm.normalise("1.支气管肺炎；2.轻度贫血；3.腹泻病")
    assert res.categories == ["支气管肺炎", "贫血", "腹泻"] and not res.unmapped
    assert res.mentions[1].text == "轻度贫血"  # a synonym as a whole: its 轻度 is not split off


def test_longest_match_and_multilabel_order(norm):
    assert norm.normalise("毛细支气管炎").categories == ["毛细支气管炎"]
    assert norm.normalise("急性喉气管支气管炎").categories == ["急性喉气管支气管炎"]
    assert norm.normalise("小儿上呼吸道感染").categories == ["急性上呼吸道感染"]
    assert norm.normalise("哮喘；支气管肺炎").categories == ["支气管哮喘", "支气管肺炎"]


def test_negation_and_uncertainty(norm):
    r = norm.normalise("否认结核病史，排除气道异物")
    assert r.categories == [] and {m.category for m in r.mentions if m.negated} == {"肺结核", "气管支气管异物"}
    for text in ("肺结核不能排除", "不除外肺结核", "肺结核待排", "考虑肺结核", "肺结核？", "肺结核可能"):
        r = norm.normalise(text)
        assert r.categories == ["肺结核"] and r.uncertain == ["肺结核"], text
        assert not any(m.negated for m in r.mentions), text
    r = norm.normalise("考虑支气管炎，支气管肺炎不能排除")
    assert r.categories == ["急性支气管炎", "支气管肺炎"] and len(r.uncertain) == 2
    r = norm.normalise("No pneumothorax. Possible right lower lobe pneumonia.", "en")
    assert r.categories == ["肺炎"] and r.uncertain == ["肺炎"]
    assert [m.category for m in r.mentions if m.negated] == ["气胸"]


def test_attributes(norm):
    m = norm.normalise("右下肺炎").mentions[0]
    assert (m.category, m.attributes) == ("肺炎", {"side": "right", "levels": ["lower"]})
    m = norm.normalise("肺炎(右下)").mentions[0]
    assert m.attributes == {"side": "right", "levels": ["lower"]}
    m = norm.normalise("双肺下叶及左肺上叶舌段炎性病变（符合病毒性肺炎）").mentions[0]
    assert m.attributes == {"side": "both", "levels": ["lower", "upper"], "site_kind": "lobe"}
    m = norm.normalise("急性细菌性呼吸道感染").mentions[0]
    assert m.attributes == {"acuity": "acute", "etiology": "bacterial"}
    assert [m.attributes["hedge"] for m in norm.normalise("1.肺炎(右下)待排；2.考虑哮喘").mentions] == ["待排", "考虑"]
    assert norm.normalise("肺炎(右下)待排").mentions[0].attributes["side"] == "right"


def test_normal_and_finding_categories(norm):
    assert norm.normalise("心肺膈未见明显异常。").categories == ["正常"]
    assert norm.normalise("胸部CT平扫+增强未见明显异常。").categories == ["正常"]
    assert norm.normalise("No acute cardiopulmonary abnormality.", "en").categories == ["正常"]
    # a finding counts only without a disease; 正常 only when nothing else is named
    assert norm.normalise("右肺下野斑片影，考虑支气管肺炎。").categories == ["支气管肺炎"]
    assert norm.normalise("1.新发右肺下野斑片影。2.左肺上叶实变，较前进展。").categories == ["斑片影", "肺实变"]
    r = norm.normalise("原右肺下野斑片影已基本吸收。余心肺未见明显异常。")
    assert r.categories == ["斑片影"] and not r.unmapped


@pytest.mark.shared
def test_imcs21_diagnoses_and_unmapped_report(norm):
    path = shared_data("imcs21_mrg_1000") / "imcs21_mrg_1000.parsed.jsonl"
    diags = [json.loads(line)["report"]["诊断"] for line in path.read_text(encoding="utf-8").splitlines()]
    texts = [d for d in diags if d.strip("。 ")]
    rep = norm.report(texts)
    assert rep["texts"] == len(texts) and rep["mapped_texts"] + rep["unmapped_texts"] == len(texts)
    assert rep["mapped_share"] >= 0.98
    unmapped = {u["fragment"]: u["count"] for u in rep["unmapped"]}
    assert "暂缺" in unmapped and sum(unmapped.values()) >= rep["unmapped_texts"]
    assert list(rep["categories"].values()) == sorted(rep["categories"].values(), reverse=True)
    for name in ("急性上呼吸道感染", "消化不良", "腹泻", "急性支气管炎", "支气管肺炎"):
        assert rep["categories"].get(name, 0) > 0, name
    assert rep["uncertain"].get("肺炎", 0) >= 3  # 肺炎不能排除 / 不能排除肺炎 / 肺炎？


@pytest.mark.shared
def test_real_ct_impressions(norm):
    path = shared_data("cov_ctr_reports_zh_excerpt") / "reports_ZH_EN.first27.csv"
    with open(path, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:  # every one reads 炎性病变（符合病毒性肺炎）
        r = norm.normalise(row["impression"])
        assert r.categories == ["肺炎", "病毒性肺炎"] and not r.unmapped and not r.uncertain, row["impression"]
        assert r.mentions[0].attributes.get("site_kind") in (None, "lobe")


def test_config_is_checked():
    with pytest.raises(ConfigError, match="already a synonym"):
        from_dict(CategoryConfig, {"categories": [{"name": "A", "zh": ["肺炎"]}, {"name": "B", "zh": ["肺炎"]}]})
    with pytest.raises(ConfigError, match="patterns"):
        from_dict(CategoryConfig, {"categories": [{"name": "A", "patterns": ["(unclosed"]}]})
    with pytest.raises(ConfigError, match="kind"):
        from_dict(CategoryConfig, {"categories": [{"name": "A", "zh": ["x"], "kind": "illness"}]})


def test_a_hospital_dictionary_replaces_the_shipped_one(tmp_path):
    path = tmp_path / "cats.yaml"
    path.write_text("categories:\n  - {name: 川崎病, zh: [川崎病, 皮肤黏膜淋巴结综合征]}\n", encoding="utf-8")
    norm = CategoryNormaliser.from_yaml(path)
    assert norm.normalise("皮肤黏膜淋巴结综合征").categories == ["川崎病"]
    assert norm.normalise("支气管肺炎").unmapped == ["支气管肺炎"]
