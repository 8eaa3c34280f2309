"""The findings pre-stage (``objective: findings``): a convolutional tower learns from report-derived labels which
quadrant of a synthetic image holds a faint or a dense lesion, alone (perceiver and LLM unchanged), and the next
stage starts from the trained tower."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from train_helpers import train_config, write_dataset

from p2med.common.errors import P2MedError
from p2med.config import to_dict
from p2med.model.build import build_parts
from p2med.model.checkpoint import load_checkpoint
from p2med.model.tokenizer import load_tokenizer
from p2med.train.findings import finding_examples, mirrored
from p2med.train.run import model_config, train

RESNET = dict(image_size=40, num_channels=3, embedding_size=8, hidden_sizes=[16, 32], depths=[1, 1],
              layer_type="basic")
STAGES = [{"name": "vision", "data": "stage1", "objective": "findings", "lr": {"vision": 5e-3}, "epochs": 25,
           "trainable": {"vision": "full", "perceiver": "frozen", "llm": "frozen"}},
          {"name": "stage1", "data": "stage1", "lr": {"perceiver": 1e-3}, "epochs": 1,
           "trainable": {"vision": "frozen", "perceiver": "full", "llm": "frozen"}}]


def conv_model_yaml(tmp_path):
    from p2med.train.run import model_config

    mcfg = model_config(train_config(tmp_path, tmp_path, tmp_path / "x"))
    data = to_dict(mcfg)
    data["vision"].update(class_name="ResNetModel", hf_config=RESNET, feature_layer=-1)
    path = tmp_path / "conv.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


THROUGH = [dict(STAGES[0], trainable={"vision": "full", "perceiver": "full", "llm": "frozen"},
                lr={"vision": 5e-3, "perceiver": 1e-3}), STAGES[1]]
MIRROR = [dict(STAGES[0], mirror=True), STAGES[1]]     # trained on mirrored exams half the time, scored unmirrored


@pytest.mark.parametrize("stages", [STAGES, THROUGH, MIRROR], ids=["tower", "tower+perceiver", "tower+mirror"])
def test_the_tower_learns_the_report_findings_and_the_next_stage_keeps_it(tmp_path, stages):
    torch.set_num_threads(1)
    ds = write_dataset(tmp_path, n_xray=60, n_ct=0, n_text=4, stages=("stage1",))
    examples = finding_examples(ds, "stage1")
    assert len(examples) == 60 and all(len(labels) == 1 for _, labels, _, _ in examples)   # 右肺上野斑片影 -> one
    cfg = train_config(tmp_path, ds, tmp_path / "out", model=str(conv_model_yaml(tmp_path)), batch_size=8,
                       stages=stages)
    final = train(cfg, stage="vision")
    summary = json.loads((tmp_path / "out" / "vision" / "findings.json").read_text())
    counts = {}
    for _, labels, _, _ in examples:
        counts[min(labels)] = counts.get(min(labels), 0) + 1
    constant = max(counts.values()) / len(examples)        # the best constant answer
    print(f"train exact-set accuracy {summary['train_exact']} vs constant {constant:.3f}", summary["history"][-1])
    assert set(summary["labels"]) <= {f"{p}|{s}|{z}" for p in ("patchy", "consolidation") for s in ("left", "right")
                                      for z in ("upper", "lower")}
    assert summary["train_exact"]["all"] > constant + 0.4 and summary["train_exact"]["XR"] == summary["train_exact"]["all"]
    model, _, _ = load_checkpoint(final)
    lineage = json.loads((final / "lineage.json").read_text())
    assert lineage["findings"]["train_exact"] == summary["train_exact"]
    torch.manual_seed(cfg.seed)                                # the build the stage started from
    start = build_parts(model_config(cfg), load_tokenizer(tmp_path / "out" / "tokenizer", "tokenizer"))[0]
    moved = [k for k, v in start.perceiver.state_dict().items() if not torch.equal(v, model.perceiver.state_dict()[k])]
    assert bool(moved) == (stages is THROUGH)                  # the perceiver trains only when asked
    after = train(cfg, stage="stage1")                         # starts from the pre-trained tower, frozen
    tower = {k: v for k, v in model.vision.state_dict().items()}
    kept = load_checkpoint(after)[0].vision.state_dict()
    assert [k for k in tower if not torch.equal(tower[k], kept[k])] == []


def test_a_findings_stage_never_trains_the_llm(tmp_path):
    for trainable, lr in (({"vision": "full", "perceiver": "full", "llm": "full"},
                           {"vision": 1e-3, "perceiver": 1e-3, "llm": 1e-3}),
                          ({"vision": "lora", "perceiver": "frozen", "llm": "frozen"}, {"vision": 1e-3})):
        with pytest.raises(P2MedError, match="objective findings trains the vision tower"):
            train_config(tmp_path, tmp_path, tmp_path / "out", stages=[dict(STAGES[0], trainable=trainable, lr=lr)])


def test_a_findings_stage_reads_every_exam_of_the_joined_folders_once(tmp_path):
    ds = write_dataset(tmp_path, n_xray=6, n_ct=2, n_text=2, stages=("stage1", "stage2"))
    one, both = finding_examples(ds, "stage1"), finding_examples(ds, "stage1+stage2")
    assert len(one) == 8 and len(both) == 16
    assert finding_examples(ds, "stage1+stage1") == one                  # an exam twice is read once
    assert all(len(refs) >= 1 for refs, *_ in both)
    assert sorted({modality for *_, modality in both}) == ["CT", "XR"]
    language = dict(STAGES[1], data="stage1+stage2")
    with pytest.raises(P2MedError, match="only objective findings joins folders"):
        train_config(tmp_path, ds, tmp_path / "out", stages=[language])


def test_a_findings_stage_can_keep_to_some_modalities(tmp_path):
    torch.set_num_threads(1)
    ds = write_dataset(tmp_path, n_xray=12, n_ct=6, n_text=2, stages=("stage1",))
    only_xr = [dict(STAGES[0], epochs=1, modalities=["XR"])]
    cfg = train_config(tmp_path, ds, tmp_path / "out", model=str(conv_model_yaml(tmp_path)), batch_size=4,
                       stages=only_xr)
    train(cfg, stage="vision")
    summary = json.loads((tmp_path / "out" / "vision" / "findings.json").read_text())
    assert summary["train_exams"] + summary["held_out_exams"] == 12 and set(summary["train_exact"]) == {"all", "XR"}
    with pytest.raises(P2MedError, match="only objective findings chooses modalities"):
        train_config(tmp_path, ds, tmp_path / "out2", stages=[dict(STAGES[1], modalities=["XR"])])


def test_a_mirrored_finding_changes_side_and_only_a_findings_stage_mirrors(tmp_path):
    assert mirrored("patchy|left|upper") == "patchy|right|upper" and mirrored("effusion|right|") == "effusion|left|"
    assert mirrored("ggo||lower") == "ggo||lower"                       # no side stated: nothing to swap
    with pytest.raises(P2MedError, match="only objective findings mirrors images"):
        train_config(tmp_path, tmp_path, tmp_path / "out", stages=[dict(STAGES[1], mirror=True)])
