"""End to end: the tiny preset overfits a handful of synthetic exams until greedy generation writes their reports.

Phantom X-rays and CTs (windowed to 0..1 as the ingestion cache holds them) with reports written from their
planted findings, one multi-round conversation (a prior exam and its report, then the follow-up); identical
prompt text, so only the images tell the exams apart. Training uses cached frozen-encoder features; the final
generation runs from pixels through the whole model, batched, and again from the saved checkpoint folder.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from model_helpers import one_thread  # noqa: F401 (fixture)

from p2med.config import load_config
from p2med.model.build import build_model
from p2med.model.checkpoint import load_checkpoint, save_checkpoint
from p2med.model.config import ModelConfig, preset_path
from p2med.model.conversation import IGNORE
from p2med.model.generate import GenerationConfig, generate
from p2med.model.tokenizer import train_tokenizer
from p2med.synth import ct_phantom, xray_phantom
from p2med.synth.findings import Finding
from p2med.synth.reports import Change, write_report

XR_PROMPT = "[检查方式] X线 [图像] <image> 请根据以上影像写出报告，格式：[影像所见] ... [影像诊断] ..."
CT_PROMPT = "[检查方式] CT [图像] <image> 请根据以上影像写出报告，格式：[影像所见] ... [影像诊断] ..."

pytestmark = pytest.mark.usefixtures("one_thread")


def _report(rng, modality, findings, **kw) -> str:
    fnd, imp = write_report(rng, modality, findings, **kw)
    return f"[影像所见] {fnd} [影像诊断] {imp}"


def synthetic_exams() -> list[dict]:
    """Two X-rays, one CT, and one follow-up X-ray conversation with its prior."""
    rng = np.random.default_rng(5)
    xc = xray_phantom.XrayPhantomConfig(image_size_range=(160, 160))
    out = []
    xr_cases = [[Finding("consolidation", "right", "lower", 0.25)], []]
    for i, findings in enumerate(xr_cases):
        child = xray_phantom.sample_anatomy(rng, 2.0 + 3 * i, xc)
        img = xray_phantom.render(child, findings, "frontal", xc, seed=i).image
        out.append({"turns": [{"human": XR_PROMPT, "assistant": _report(rng, "XR", findings)}], "images": [img]})
    cc = ct_phantom.CtPhantomConfig()
    for i, findings in enumerate([[Finding("ggo", "left", "upper", 0.3)]]):
        child = ct_phantom.sample_anatomy(rng, 4.0 + 4 * i, cc)
        z = np.arange(child.z_start_mm, child.z_end_mm, 10.0)
        hu = ct_phantom.render(child, findings, z, matrix=64, cfg=cc, seed=i).hu
        vol = np.clip((hu + 1100.0) / 1200.0, 0.0, 1.0).astype(np.float32)     # W 1200 / L -500 (SPEC 2)
        out.append({"turns": [{"human": CT_PROMPT, "assistant": _report(rng, "CT", findings)}], "images": [vol]})
    child = xray_phantom.sample_anatomy(rng, 6.0, xc)
    prior_f, now_f = Finding("patchy", "left", "lower", 0.25), Finding("patchy", "left", "lower", 0.12)
    prior = xray_phantom.render(child, [prior_f], "frontal", xc, seed=10).image
    now = xray_phantom.render(child, [now_f], "frontal", xc, seed=11, jitter=1).image
    follow = _report(rng, "XR", [now_f], changes=[Change(now_f, prior_f, "improved")], prior_date="2024-03-01")
    out.append({"turns": [{"human": XR_PROMPT, "assistant": _report(rng, "XR", [prior_f])},
                          {"human": XR_PROMPT, "assistant": follow}], "images": [prior, now]})
    for conv in out:
        conv["lang"] = "zh"
    return out


@pytest.mark.slow
def test_tiny_preset_overfits_synthetic_exams_end_to_end(tmp_path):
    start = time.perf_counter()
    exams = synthetic_exams()
    texts = [t[k] for c in exams for t in c["turns"] for k in ("human", "assistant")]
    cfg = load_config(ModelConfig, preset_path("tiny"))
    tok = train_tokenizer(texts * 3, vocab_size=cfg.tokenizer.vocab_size, min_frequency=cfg.tokenizer.min_frequency)
    torch.manual_seed(0)
    model, processor, tok = build_model(cfg, tokenizer=tok)

    # cache the frozen encoder's features once, train the perceiver and the LLM on them
    samples = []
    for conv in exams:
        px = processor.encode(conv["turns"], conv["images"], "zh")["pixel_values"]
        with torch.no_grad():
            feats = [model.encode_images(p[None])[0] for p in px]       # [S, P, D_vision] each
        samples.append(processor.encode(conv["turns"], lang="zh", image_features=feats))
    batch = processor.collate(samples)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=3e-3, betas=(0.9, 0.95), weight_decay=0.0)
    total = 150  # steps of the warmup + cosine schedule; it usually succeeds well before the end
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 10) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    prompts = [{**c, "turns": c["turns"][:-1] + [{"human": c["turns"][-1]["human"]}]} for c in exams]
    wanted = [c["turns"][-1]["assistant"] for c in exams]
    longest = max(len(tok(w)["input_ids"]) for w in wanted)
    target = batch["labels"][:, 1:]
    model.train()
    got, steps = [], 0
    for steps in range(1, total + 1):
        out = model(**batch)
        loss = out.loss_sum / out.n_tokens
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        right = (out.logits[:, :-1].argmax(-1) == target)[target != IGNORE]
        if right.all():  # teacher-forced argmax is perfect: check what greedy generation writes
            got = generate(model, processor, prompts, GenerationConfig(max_new_tokens=longest + 8))
            if got == wanted:
                break
    elapsed = time.perf_counter() - start
    print(f"overfit: {steps} steps, loss {loss.item():.4f}, {elapsed:.1f} s")
    assert got == wanted, f"after {steps} steps the reports differ: {got} vs {wanted}"
    # the checkpoint folder holds everything the reports need (random-weight parts, perceiver, tokenizer)
    loaded, loaded_processor, _ = load_checkpoint(save_checkpoint(model, processor, tmp_path / "ckpt"))
    assert generate(loaded, loaded_processor, prompts, GenerationConfig(max_new_tokens=longest + 8)) == wanted
