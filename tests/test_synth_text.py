"""The synthetic hospital's text: learnable but never leaking the diagnosis, planted PHI where the truth
says, duplicates at the stated Jaccard, defects planted, follow-up reports that compare."""

from __future__ import annotations

import json
from collections import Counter

import pydicom
import pytest

from p2med.export.schema import TASKS
from p2med.export.tables import Export
from p2med.synth.config import SynthConfig
from p2med.synth.diseases import DISEASES, diagnosis_terms
from p2med.synth.hospital import OUTPATIENT_KEYS, _Planner
from p2med.synth.near_dups import jaccard, record_text, shingles
from p2med.synth.phi import id_number_valid
from p2med.synth.reports import CHANGE_IMPRESSION_ZH


def _jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def plans():
    """A 200-patient hospital planned (text only, no pixels)."""
    planner = _Planner(SynthConfig(patients=200, seed=0))
    return [planner.patient(i) for i in range(200)]


def test_disease_profiles_cover_pediatric_respiratory_diseases(plans):
    assert len(DISEASES) >= 15
    used = Counter(lab["diseases"][0] for p in plans for lab in p.labels)
    assert len(used) >= 15, used
    for name in ("支气管肺炎", "大叶性肺炎", "支原体肺炎", "病毒性肺炎", "毛细支气管炎", "急性支气管炎",
                 "支气管哮喘", "急性上呼吸道感染", "胸腔积液"):
        assert name in DISEASES


def test_diagnosis_never_in_inputs(plans):
    terms = diagnosis_terms()
    checked = 0
    for p in plans:
        labels = {lab["record_id"]: lab for lab in p.labels}
        for rec in p.records:
            inputs = "".join(rec.get(k) or "" for k in TASKS[rec["task"]].inputs)
            for disease in labels[rec["record_id"]]["diseases"]:
                for term in terms[disease]:
                    assert term not in inputs, (disease, term, rec["record_id"])
            checked += 1
    assert checked > 500


def test_scale_of_a_200_patient_hospital(plans):
    exams = Counter(e.modality for p in plans for e in p.exams)
    assert exams["CT"] >= 50 and exams["XR"] >= 100
    tasks = Counter(r["task"] for p in plans for r in p.records)
    assert all(tasks[t] > 30 for t in ("outpatient", "first_course", "attending_round", "chief_round"))
    states = Counter(c.state for p in plans for e in p.exams if e.changes for c in e.changes)
    assert all(states[s] > 0 for s in ("new", "improved", "resolved", "progressed"))


def test_follow_up_reports_compare_with_the_prior(plans):
    follow = [e for p in plans for e in p.exams if e.changes is not None]
    assert follow
    for e in follow:
        assert "片比较：" in e.findings_text
        for ch in e.changes:
            if ch.state in ("improved", "progressed", "resolved"):
                assert CHANGE_IMPRESSION_ZH[ch.state] in e.impression, (e.impression, ch.state)


def test_planted_text_phi_is_in_the_export(small_hospital):
    export, truth = small_hospital
    records = {r["record_id"]: r for r in Export.open(export).load("records")}
    phi = _jsonl(truth / "phi.jsonl")
    planted = [row for row in phi if row["where"] == "record"]
    assert planted
    for row in planted:
        text = json.dumps(records[row["record_id"]], ensure_ascii=False)
        for ident in row["identifiers"]:
            assert ident["value"] in text, (row["record_id"], ident)
    people = [row for row in phi if row["where"] == "patient"]
    for row in people:
        ids = {i["kind"]: i["value"] for i in row["identifiers"]}
        assert id_number_valid(ids["id_number"])


def test_planted_dicom_phi_is_in_the_tags(small_hospital):
    export, truth = small_hospital
    for row in _jsonl(truth / "phi.jsonl"):
        if row["where"] != "dicom":
            continue
        path = next(p for p in (export / "images" / row["exam_id"]).rglob("*") if p.is_file())
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        block = ds.private_block(0x0011, "P2MED SYNTH HIS")
        for ident in row["identifiers"]:
            kw = ident["kind"]
            if kw.startswith("Private"):
                value = block[int(kw.rsplit(" ", 1)[1], 16)].value
                if isinstance(value, bytes):   # implicit VR files: private elements read back as UN
                    value = value.decode("utf-8").rstrip(" \x00")
            else:
                value = str(ds.get(kw, ""))
            assert ident["value"] in value, (kw, ident["value"], value)


def test_duplicates_and_defects(small_hospital):
    export, truth = small_hospital
    records = {r["record_id"]: r for r in Export.open(export).load("records")}
    dups = _jsonl(truth / "duplicates.jsonl")
    kinds = Counter(d["kind"] for d in dups)
    assert kinds["duplicate"] > 0 and kinds["hard_negative"] > 0
    for d in dups:
        a, b = records[d["original"]], records[d["copy"]]
        j = jaccard(shingles(record_text(a, OUTPATIENT_KEYS)), shingles(record_text(b, OUTPATIENT_KEYS)))
        assert abs(j - d["jaccard"]) < 1e-6
        assert (0.85 <= j <= 1.0) if d["kind"] == "duplicate" else (0.6 <= j < 0.85)
    labels = _jsonl(truth / "labels.jsonl")
    defects = Counter(x.split(":")[0] for lab in labels for x in lab["defects"])
    assert defects["missing_output"] > 0 and defects["overlong"] > 0
    for lab in labels:
        rec = records[lab["record_id"]]
        for x in lab["defects"]:
            if x.startswith("missing_output:"):
                assert not rec.get(x.split(":")[1])
            else:
                assert sum(len(v) for k, v in rec.items() if k in TASKS[rec["task"]].inputs + TASKS[rec["task"]].outputs
                           and v) > 4000
