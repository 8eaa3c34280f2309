"""The three stages change only what they train; resume after a kill repeats the uninterrupted run; learning.

Runs the real trainer (``p2med.train.run.train`` and the ``p2med train`` CLI in a subprocess) on the tests'
mini model and a small dataset in the documented format (train_helpers.write_dataset).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import config_file, heldout_loss, one_stage, subprocess_env, train_config, write_dataset

from p2med.model.build import build_parts
from p2med.model.checkpoint import load_checkpoint
from p2med.model.tokenizer import load_tokenizer
from p2med.train.metrics import read_metrics
from p2med.train.run import model_config, train

def parts(model) -> dict[str, dict[str, torch.Tensor]]:
    """Parameters per part: vision, perceiver, llm (base weights, peft's names undone) and lora."""
    out = {"vision": {}, "perceiver": {}, "llm": {}, "lora": {}}
    for name, p in model.named_parameters():
        part = name.split(".", 1)[0]
        if "lora_" in name:
            out["lora"][name] = p.detach().clone()
            continue
        clean = name.replace("base_model.model.", "").replace(".base_layer.", ".")
        out[part][clean] = p.detach().clone()
    return out


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def changed(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)


def test_stages_change_only_what_they_train(tmp_path):
    ds = write_dataset(tmp_path)
    cfg = train_config(tmp_path, ds, tmp_path / "out")
    final = train(cfg)
    assert final == tmp_path / "out" / "stage3" / "final"
    torch.manual_seed(cfg.seed)                     # the start of stage 1, rebuilt as run.py builds it
    start, _, _ = build_parts(model_config(cfg), load_tokenizer(tmp_path / "out" / "tokenizer", "tokenizer"))
    s = [parts(start)] + [parts(load_checkpoint(tmp_path / "out" / f"stage{k}" / "final")[0]) for k in (1, 2, 3)]
    # stage 1 (paper-literal): perceiver only
    assert same(s[0]["vision"], s[1]["vision"]) and same(s[0]["llm"], s[1]["llm"]) and not s[1]["lora"]
    assert changed(s[0]["perceiver"], s[1]["perceiver"])
    # stages 2 and 3: perceiver + LoRA; the base LLM and the vision tower stay bit-identical
    for a, b in ((s[1], s[2]), (s[2], s[3])):
        assert same(a["vision"], b["vision"]) and same(a["llm"], b["llm"])
        assert changed(a["perceiver"], b["perceiver"])
    assert s[2]["lora"] and any(v.abs().sum() > 0 for k, v in s[2]["lora"].items() if "lora_B" in k)
    assert changed(s[2]["lora"], s[3]["lora"])
    # stage 1 skipped (and counted) its text batches; the lineage links the stages
    lin = [json.loads((tmp_path / "out" / f"stage{k}" / "final" / "lineage.json").read_text()) for k in (1, 2, 3)]
    assert lin[0]["skipped_text_batches"] > 0 and lin[1]["skipped_text_batches"] == 0
    assert {r["kind"] for r in read_metrics(tmp_path / "out" / "stage1")} == {"image"}
    assert lin[0]["previous"] is None and lin[1]["previous"]["path"] == "stage1/final"
    assert lin[2]["previous"]["path"] == "stage2/final" and len(lin[2]["previous"]["sha256"]) == 64
    for row in lin:
        assert row["dataset_manifest_sha256"] and row["config"]["stages"] and "p2med" in row["code"]
        assert str(tmp_path / "out") not in json.dumps(row)
    # every step checkpoint carries its lineage and trainer state
    ck = sorted((tmp_path / "out" / "stage2" / "checkpoints").glob("step-*"))
    assert ck and all((c / "trainer_state.pt").is_file() and (c / "lineage.json").is_file() for c in ck)
    # the feature cache holds every image once, under one encoder identity reused by all stages
    idents = [p for p in (tmp_path / "out" / "features").iterdir() if p.is_dir()]
    assert len(idents) == 1 and {x["feature_cache"] for x in lin} == {idents[0].name}


def _cli(cfg_file: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "p2med.cli", "train", "--config", str(cfg_file), *extra]


@pytest.mark.slow
def test_run_killed_mid_training_resumes_with_the_same_losses(tmp_path):
    ds = write_dataset(tmp_path, n_xray=8, n_ct=4, n_text=8, stages=("stage1",))
    files = {run: config_file(tmp_path, ds, run, stages=one_stage("stage1", "lora", epochs=12), checkpoint_every=5,
                              grad_accum=2) for run in ("whole", "killed")}
    subprocess.run(_cli(files["whole"]), env=subprocess_env(), check=True, capture_output=True)
    proc = subprocess.Popen(_cli(files["killed"]), env=subprocess_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckdir = tmp_path / "killed" / "s" / "checkpoints"
    deadline = time.time() + 300
    while proc.poll() is None and not list(ckdir.glob("step-*")) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "s" / "final").exists(), "the run finished before it could be killed"
    out = subprocess.run(_cli(files["killed"], "--resume"), env=subprocess_env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    whole, resumed = read_metrics(tmp_path / "whole" / "s"), read_metrics(tmp_path / "killed" / "s")
    assert [r["step"] for r in resumed] == [r["step"] for r in whole] and len(whole) > 10
    assert [r["loss"] for r in resumed] == [r["loss"] for r in whole]
    a, b = (load_checkpoint(tmp_path / r / "s" / "final")[0] for r in ("whole", "killed"))
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    again = subprocess.run(_cli(files["killed"]), env=subprocess_env(), capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.slow
def test_loss_falls_well_below_a_control_trained_on_shuffled_targets(tmp_path):
    stage = one_stage("stage3", "full", epochs=30, lr=3e-3)
    result = {}
    real = None
    for shuffled in (False, True):
        root = tmp_path / ("control" if shuffled else "real")
        ds = write_dataset(root, n_xray=48, n_ct=24, n_text=48, shuffle_targets=shuffled, stages=("stage1", "stage3"))
        real = real or ds
        final = train(train_config(root, ds, root / "out", stages=stage, batch_size=8))
        rows = read_metrics(root / "out" / "s")
        result[shuffled] = (np.mean([r["loss"] for r in rows[-15:]]), heldout_loss(final, real, "stage1"))
    (train_real, held_real), (train_ctl, held_ctl) = result[False], result[True]
    print(f"train loss {train_real:.3f} vs control {train_ctl:.3f}; held-out {held_real:.3f} vs {held_ctl:.3f}")
    assert train_real < 0.5 * train_ctl and held_real < 0.5 * held_ctl


def test_a_stage_that_trains_the_tower_feeds_pixels_and_caches_nothing(tmp_path):
    ds = write_dataset(tmp_path, n_xray=4, n_ct=2, n_text=2, stages=("stage1",))
    stage = one_stage("stage1", "lora", epochs=1)
    stage[0]["trainable"]["vision"] = "lora"
    stage[0]["lr"]["vision"] = 1e-3
    final = train(train_config(tmp_path, ds, tmp_path / "out", stages=stage))
    trained = parts(load_checkpoint(final)[0])["lora"]
    assert any(k.startswith("vision.") and "lora_B" in k and v.abs().sum() > 0 for k, v in trained.items())
    assert not (tmp_path / "out" / "features").exists()
    assert json.loads((final / "lineage.json").read_text())["feature_cache"] is None
