"""The demo: its scoring and controls on hand-made samples, and the reduced demo end to end (two synthetic
hospitals -> de-identify -> ingest -> build -> train -> answer -> report), resumed without redoing a step."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from p2med.demo.baselines import chance, swapped_reader
from p2med.demo.controls import shuffle_images
from p2med.demo.metrics import score_samples

ROOT = Path(__file__).resolve().parents[1]
WIDE_MARGIN = 0.15          # finding + location: the full model over the shuffled-image control (~40 held-out X-rays)


def _xr(sid: str, impression: str, turns: int = 1, images: int = 1) -> dict:
    return {"sample_id": sid, "task": "xray_report", "lang": "zh", "output_keys": ["findings", "impression"],
            "images": [{"array": f"{sid}-{k}.npy"} for k in range(turns * images)],
            "turns": [{"images": list(range(k * images, (k + 1) * images)), "human": "<image>" * images,
                       "target": {"findings": "……", "impression": impression},
                       "assistant": f"【影像所见】……\n【影像诊断】{impression}"} for k in range(turns)]}


def _record(sid: str, diagnosis: str) -> dict:
    return {"sample_id": sid, "task": "outpatient", "lang": "zh", "images": [],
            "output_keys": ["preliminary_diagnosis", "treatment_recommendation", "treatment_plan"],
            "turns": [{"images": [], "human": "咳嗽", "target": {"preliminary_diagnosis": diagnosis}}]}


def test_finding_location_change_and_diagnosis_scores():
    samples = [_xr("a", "右肺下野斑片影，考虑支气管肺炎。"), _xr("b", "心肺膈未见明显异常。"),
               _xr("c", "1.右肺下野斑片影。2.左侧胸腔积液。"), _xr("d", "右肺下野斑片影，较前吸收好转。", turns=2),
               _record("e", "支气管肺炎"), _record("f", "急性上呼吸道感染"),
               _xr("g", "左肺上野斑片影，较前吸收好转。", turns=2)]
    answers = {"a": "【影像所见】……【影像诊断】右肺下野斑片影，考虑支气管肺炎。",
               "b": "【影像诊断】右肺上野斑片影。",                       # a finding where there is none
               "c": "【影像诊断】右肺下野斑片影。",                       # one of two findings
               "d": "【影像诊断】右肺下野斑片影，较前进展。",              # right finding, wrong change
               "e": "【初步诊断】支气管肺炎（可能）【处理意见】……", "f": "no sections at all",
               "g": "【影像诊断】右肺下野斑片影，较前吸收好转。"}         # right change, wrong finding
    s = score_samples(samples, answers)
    assert s["xray_report"]["finding_location"] == [1, 0, 0, 1, 0]
    assert s["xray_report"]["change"] == [0, 0] and s["xray_report"]["change_state"] == [0, 1]
    assert s["outpatient"]["diagnosis"] == [1, 0]
    c = chance(samples)
    assert c["xray_report"]["finding_location"] == pytest.approx(2 / 5)   # the right-lower patchy set, twice
    assert c["xray_report"]["change"] == pytest.approx(1 / 2) and c["xray_report"]["change_state"] == 1.0
    assert c["outpatient"]["diagnosis"] == pytest.approx(1 / 2)


def test_shuffled_control_gives_every_exam_another_exams_images():
    samples = [_xr(f"s{i}", "心肺膈未见明显异常。", images=1 + i % 2) for i in range(7)] + [_record("r", "哮喘")]
    out = shuffle_images(samples, seed=3)
    assert [s["sample_id"] for s in out] == [s["sample_id"] for s in samples]
    for before, after in zip(samples, out):
        assert after["turns"] == before["turns"], "text stays"
        if before["images"]:
            assert after["meta"]["images_from"] != before["sample_id"]
            assert len(after["images"]) == len(before["images"]), "same layout"
    assert Counter(a["array"] for s in out for a in s["images"]) == \
        Counter(a["array"] for s in samples for a in s["images"]), "a permutation: every image used once"
    assert shuffle_images(samples, seed=3) == out


def test_a_perfect_reader_of_the_shuffled_images_scores_the_lenders_agreement():
    normal, patchy = "心肺膈未见明显异常。", "右肺下野斑片影。"
    samples = [_xr(f"s{i}", normal if i < 4 else patchy) for i in range(6)]        # 4 normal, 2 patchy
    shuffled = shuffle_images(samples, seed=0)
    by_id = {s["sample_id"]: s for s in samples}
    expect = sum(by_id[s["meta"]["images_from"]]["turns"][0]["target"]["impression"]
                 == s["turns"][0]["target"]["impression"] for s in shuffled) / 6
    got = swapped_reader(samples, shuffled)["xray_report"]["finding_location"]
    assert got == pytest.approx(expect) and 0 < got < 1


@pytest.mark.slow
def test_reduced_demo_end_to_end_and_resumed(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "p2med.cli", "demo", "--reduced", "--out", str(out)]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1500)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "serve the model: p2med serve --model" in first.stdout

    results = json.loads((out / "report" / "results.json").read_text(encoding="utf-8"))
    bench = [json.loads(l) for l in (out / "held_out" / "dataset" / "benchmark" / "samples.jsonl").open()]
    train_patients = {json.loads(l)["patient_id"] for f in (out / "train" / "dataset").glob("stage*/*.jsonl")
                      for l in f.open()}
    assert not train_patients & {s["patient_id"] for s in bench}, "the held-out hospital is never trained on"
    by_task = Counter(s["task"] for s in bench)
    for task in ("xray_report", "ct_report"):
        for run in ("model", "shuffled"):
            cell = results[run][task]["finding_location"]
            assert cell["n"] == by_task[task] and 0 <= cell["mean"] <= 1
    assert results["chance"] == chance(bench)
    for name, target in results["targets"].items():
        assert target["met"] in (True, False) and name
    page = (out / "report" / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)=["'](?!data:|#)""", page), "self-contained: no external asset"
    assert "shuffled images" in page and "chance" in page
    lineage = json.loads((out / "model" / "stage3" / "final" / "lineage.json").read_text())
    stages = {st["name"]: st for st in lineage["config"]["stages"]}
    assert stages["stage1"]["trainable"]["llm"] == "full" and stages["vision"]["objective"] == "findings"
    assert any("objective findings" in note for note in results["training"]["notes"])

    # the model reads the X-rays: well above the same model given other exams' images, and above chance
    model, shuffled = (results[run]["xray_report"]["finding_location"]["mean"] for run in ("model", "shuffled"))
    chance_xr = results["chance"]["xray_report"]["finding_location"]
    print(f"X-ray finding + location: model {model:.3f}, shuffled {shuffled:.3f}, chance {chance_xr:.3f}")
    assert model >= shuffled + WIDE_MARGIN and model > chance_xr

    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("done in an earlier run") == 8


def test_the_demo_key_follows_the_seeds_so_a_run_can_be_repeated(tmp_path):
    import stat

    from p2med.demo.config import DemoConfig
    from p2med.demo.pipeline import demo_key

    keys = []
    for name, seeds in (("a", (0, 1)), ("b", (0, 1)), ("c", (0, 2))):
        (tmp_path / name).mkdir()
        path = demo_key(tmp_path / name, DemoConfig(train_seed=seeds[0], held_out_seed=seeds[1]))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        keys.append(path.read_text())
    assert keys[0] == keys[1] != keys[2] and len(keys[0].strip()) == 64


def test_the_demo_stops_before_starting_when_the_disk_cannot_hold_it(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from p2med.common.errors import P2MedError
    from p2med.demo.config import DemoConfig
    from p2med.config import load_config
    from p2med.demo.pipeline import ROOT, Steps, check_free_space

    cfg = load_config(DemoConfig, ROOT / "configs" / "demo" / "default.yaml", [])    # what `make demo` runs
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(2 ** 40, 2 ** 40 - 2 ** 30, 2 ** 30))    # 1 GB free
    with pytest.raises(P2MedError, match=r"about 6\.3 GB .* only 1\.0 GB are free there: nothing was started"):
        check_free_space(tmp_path, cfg, Steps(tmp_path, cfg))
    steps = Steps(tmp_path, cfg)
    steps.done.append("synthesize the training hospital")            # a resumed run has written its data
    check_free_space(tmp_path, cfg, steps)
