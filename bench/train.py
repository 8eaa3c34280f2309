"""Training throughput: our trainer vs a stock loop, same tiny config, same data, same batches in the same order.

Ours: ``p2med.train.loop.StageTrainer.step`` with the frozen-encoder feature cache (filled once before timing,
as it is after a stage's first epoch; the fill time is printed) and length buckets instead of padding to the
longest. Stock: HF ``CLIPVisionModel`` forward on the pixels every step (images read and resized every step)
+ our perceiver + HF ``LlamaForCausalLM`` with a peft LoRA adapter, each batch padded to its longest sample, HF's
mean loss; the same AdamW, learning rates and warmup + cosine schedule. Both start from the same weights
(stage-2 trainable set: perceiver + LoRA). Batches are modality-homogeneous and shuffled without length
grouping (``length_group=1``), so each holds the set's real spread of lengths.

Cases: 32-slice CT batches, 2-view X-ray batches, and the synthetic hospital's stage-3 set (``p2med synth`` ->
``ingest`` -> ``build``, mixed X-ray / CT / records). Per case, after one untimed warm-up step of each loop,
rounds alternate [matmul peak, ours, stock] (interleaved; medians reported). Useful FLOPs = FLOPs of each
sample's forward + backward alone on cached features (no encoder, no padding), counted with
``torch.utils.flop_counter``; the stock loop's fraction counts everything it executes. fp32, 2 threads (bf16 matmul is ~100x slower on these CPUs).

Run: ``PYTHONPATH=src python bench/train.py [--steps 5] [--rounds 3] [--mixed DATASET]``
"""

from __future__ import annotations

import argparse
import copy
import io
import hashlib
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from p2med.config import from_dict, load_config
from p2med.model.build import build_parts
from p2med.model.config import ModelConfig, preset_path
from p2med.model.tokenizer import train_tokenizer
from p2med.synth.findings import Finding
from p2med.synth.reports import write_report
from p2med.train.config import StageConfig, TrainConfig
from p2med.train.data import load_image, load_stage, resolve_cache, stage_texts
from p2med.train.distributed import Dist
from p2med.train.features import FeatureCache
from p2med.train.loop import StageTrainer, cosine_with_warmup
from p2med.train.sampler import plan_batches

ROOT = Path(__file__).resolve().parents[1]
XR = "当前影像资料如下：【检查时间】2024-03-01（患儿年龄5岁）【检查方式】X线【影像】{img}\n请根据以上信息，结合专业影像学知识，按以下格式生成报告：【影像所见】……【影像诊断】……"
CT = XR.replace("X线", "CT")


# ---- data
def _array(cache: Path, arr: np.ndarray) -> dict:
    buf = io.BytesIO()
    np.save(buf, arr.astype(np.float16))
    sha = hashlib.sha256(buf.getvalue()).hexdigest()
    rel = f"arrays/{sha[:2]}/{sha}.npy"
    (cache / rel).parent.mkdir(parents=True, exist_ok=True)
    (cache / rel).write_bytes(buf.getvalue())
    return {"array": rel, "sha256": sha, "shape": list(arr.shape), "true_slices": int(arr.shape[0])}


def imaging_set(root: Path, modality: str, n: int, seed: int = 0) -> Path:
    """n samples of one modality: CT with one 32-slice series, X-ray with two views (336 px, smooth noise)."""
    rng = np.random.default_rng(seed)
    cache, ds = root / "cache", root / "ds"
    rows = []
    for i in range(n):
        f = [Finding(("patchy", "consolidation", "ggo")[i % 3], ("right", "left")[i % 2], ("upper", "lower")[i % 2])]
        fnd, imp = write_report(rng, modality, f if i % 4 else [], views=2 if modality == "XR" else 1)
        shapes = [(32, 336, 336)] if modality == "CT" else [(1, 336, 336), (1, 336, 336)]
        images = []
        for s in shapes:
            base = rng.random((s[0], 42, 42), dtype=np.float32)
            images.append(_array(cache, np.kron(base, np.ones((1, 8, 8), np.float32))))
        human = (CT if modality == "CT" else XR).format(img="<image>" * len(images))
        rows.append({"task": "ct_report" if modality == "CT" else "xray_report", "lang": "zh", "images": images,
                     "turns": [{"human": human, "assistant": f"【影像所见】{fnd}\n【影像诊断】{imp}"}]})
    (ds / "stage3").mkdir(parents=True, exist_ok=True)
    (ds / "stage3" / "samples-00000.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    (ds / "manifest.json").write_text(json.dumps({"cache": str(cache)}), encoding="utf-8")
    return ds


def hospital_set(root: Path) -> Path:
    """The synthetic hospital's stage-3 set: synth (30 patients) -> ingest -> build (thresholds scaled 0.02)."""
    from p2med.curate.build import build_dataset
    from p2med.curate.config import BuildConfig
    from p2med.imaging.ingest import ingest_export
    from p2med.synth.config import SynthConfig
    from p2med.synth.hospital import synthesize

    synthesize(SynthConfig(patients=30, seed=0), root / "h", root / "h.truth", progress=False)
    ingest_export(root / "h", root / "cache", workers=2, progress=False)
    cfg = load_config(BuildConfig, ROOT / "configs" / "build" / "default.yaml", ["scale=0.02"])
    build_dataset(root / "h", root / "cache", root / "ds", cfg)
    return root / "ds"


# ---- the stock loop
class Stock:
    """HF CLIPVision every step + our perceiver + HF Llama with peft LoRA; batches padded to the longest."""

    def __init__(self, model, processor, cache_root: Path, stage: StageConfig, total: int):
        self.tower = model.vision.tower                # CLIPVisionModel (frozen)
        self.layer, self.prefix = model.vision.feature_layer, model.vision.n_prefix
        self.perceiver, self.lm = model.perceiver, model.llm.model  # PeftModel(LlamaForCausalLM)
        self.processor, self.cache_root = processor, cache_root
        named = sorted((n, p) for n, p in model.named_parameters() if p.requires_grad)
        groups = [{"params": [p for n, p in named if n.startswith(part)], "lr": stage.lr[part]}
                  for part in ("perceiver", "llm")]
        self.params = [p for _, p in named]
        self.opt = torch.optim.AdamW(groups, weight_decay=0.0)  # as ours (TrainConfig.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, cosine_with_warmup(total, 0.03))

    def batch(self, samples) -> dict:
        items = []
        for s in samples:
            d = {"input_ids": torch.tensor(s.input_ids), "labels": torch.tensor(s.labels),
                 "image_mask": torch.tensor(s.image_mask)}
            if s.images:
                d["pixel_values"] = [self.processor.image_processor(load_image(self.cache_root, r)) for r in s.images]
            items.append(d)
        return self.processor.collate(items)

    def loss(self, b: dict) -> torch.Tensor:
        emb = self.lm.get_input_embeddings()(b["input_ids"].masked_fill(b["image_mask"], 0))  # [B, T, D]
        if "pixel_values" in b:
            px, mask = b["pixel_values"], b["slice_mask"]                              # [N, S, 3, h, w]
            with torch.no_grad():
                h = self.tower(pixel_values=px[mask], output_hidden_states=True).hidden_states[self.layer]
            feats = h.new_zeros((*mask.shape, h.shape[1] - self.prefix, h.shape[2]))   # [N, S, P, Dv]
            feats[mask] = h[:, self.prefix:]
            visual = self.perceiver(feats, mask)                                      # [N, 32, D]
            emb = emb.masked_scatter(b["image_mask"][..., None], visual)
        out = self.lm(inputs_embeds=emb, attention_mask=b["attention_mask"], labels=b["labels"])
        return out.loss

    def step(self, samples) -> float:
        loss = self.loss(self.batch(samples))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        self.sched.step()
        return float(loss)


# ---- measurements
def matmul_peak(n: int = 1024, reps: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times)


def flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def useful_flops(model, processor, features, cache_root, samples) -> int:
    """Forward + backward of each sample alone on cached features: no encoder, no padding."""
    total = 0
    for s in samples:
        d = {"input_ids": torch.tensor(s.input_ids), "labels": torch.tensor(s.labels),
             "image_mask": torch.tensor(s.image_mask)}
        if s.images:
            d["image_features"] = [features.features(cache_root, r) for r in s.images]
        b = processor.collate([d])

        def run():
            out = model(**b)
            (out.loss_sum / out.n_tokens).backward()

        total += flops(run)
    model.zero_grad(set_to_none=True)
    return total


def run_case(name: str, ds: Path, batch_size: int, steps: int, rounds: int, work: Path) -> dict:
    mcfg = load_config(ModelConfig, preset_path("tiny"))
    tok = train_tokenizer(stage_texts(ds, "stage3"), mcfg.tokenizer.vocab_size, mcfg.tokenizer.min_frequency)
    stage = from_dict(StageConfig, {"name": "bench", "data": "stage3", "lr": {"perceiver": 1e-4, "llm": 2e-4},
                                    "max_steps": steps,
                                    "trainable": {"vision": "frozen", "perceiver": "full", "llm": "lora"}})
    cfg = from_dict(TrainConfig, {"dataset": str(ds), "out": str(work), "batch_size": batch_size,
                                  "length_group": 1, "progress": False, "tensorboard": False})
    torch.manual_seed(0)
    model0, processor, _ = build_parts(mcfg, tok)
    model0.set_trainable(stage.trainable)
    cache_root = resolve_cache(ds, "")
    data = load_stage(ds, "stage3", processor)
    plan = plan_batches([s.length for s in data.samples], [s.has_images for s in data.samples], batch_size,
                        seed=0, epochs=100, length_group=1)
    batches = plan.batches[:steps]
    samples = [[data.samples[i] for i in b] for b in batches]
    features = FeatureCache(work / "features", model0, processor.image_processor, 64e9)
    features.admit(r for s in data.samples for r in s.images)
    t = time.perf_counter()
    for s in data.samples:
        for r in s.images:
            features.features(cache_root, r)
    fill = time.perf_counter() - t

    scratch = copy.deepcopy(model0)
    useful = sum(useful_flops(scratch, processor, features, cache_root, ss) for ss in samples)
    stock_scratch = Stock(copy.deepcopy(model0), processor, cache_root, stage, steps)
    executed = sum(flops(lambda ss=ss: stock_scratch.loss(stock_scratch.batch(ss)).backward()) for ss in samples)
    n_samples = sum(len(b) for b in batches)
    pad_stock = sum(len(b) * max(data.samples[i].length for i in b) for b in batches)
    real = sum(data.samples[i].length for b in batches for i in b)

    warm = StageTrainer(cfg, stage, copy.deepcopy(model0), processor, data, cache_root, features, Dist(),
                        work / "ours", {})
    warm.step([batches[0]], 1)                      # warm-up (allocator, thread pool, kernels), untimed
    Stock(copy.deepcopy(model0), processor, cache_root, stage, steps).step(samples[0])
    ours_t, stock_t, peaks, diffs, losses = [], [], [], [], None
    for _ in range(rounds):
        peaks.append(matmul_peak())
        trainer = StageTrainer(cfg, stage, copy.deepcopy(model0), processor, data, cache_root, features, Dist(),
                               work / "ours", {})
        trainer.model.train()
        t = time.perf_counter()
        ours = [trainer.step([b], k + 1)["loss"] for k, b in enumerate(batches)]
        ours_t.append(time.perf_counter() - t)
        stock = Stock(copy.deepcopy(model0), processor, cache_root, stage, steps)
        stock.perceiver.train()
        stock.lm.train()
        t = time.perf_counter()
        theirs = [stock.step(ss) for ss in samples]
        stock_t.append(time.perf_counter() - t)
        diffs.append(max(abs(a - b) / abs(b) for a, b in zip(ours, theirs)))
        losses = (ours[-1], theirs[-1])
    peak = statistics.median(peaks)
    o, s = statistics.median(ours_t), statistics.median(stock_t)
    res = {"case": name, "steps": steps, "samples": n_samples, "ours_samples_per_s": n_samples / o,
           "stock_samples_per_s": n_samples / s, "ratio": s / o, "ours_final_loss": losses[0],
           "stock_final_loss": losses[1], "max_loss_rel_diff": max(diffs), "matmul_peak_gflops": peak / 1e9,
           "ours_useful_gflops": useful / o / 1e9, "ours_useful_peak_fraction": useful / o / peak,
           "stock_gflops": executed / s / 1e9, "stock_peak_fraction": executed / s / peak,
           "padding_share_stock": 1 - real / pad_stock, "feature_cache_fill_s": fill}
    print(f"{name:6s} ours {res['ours_samples_per_s']:6.2f} samples/s  stock {res['stock_samples_per_s']:6.2f}  "
          f"ratio {res['ratio']:.2f}x  final loss {losses[0]:.4f} vs {losses[1]:.4f}  max rel diff "
          f"{res['max_loss_rel_diff']:.2e}  useful/peak {res['ours_useful_peak_fraction']:.2f}  stock/peak "
          f"{res['stock_peak_fraction']:.2f}  (peak {peak / 1e9:.0f} GFLOP/s, stock padding "
          f"{res['padding_share_stock']:.0%}, cache fill {fill:.1f} s)", flush=True)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5, help="optimizer steps per loop per round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians reported)")
    ap.add_argument("--mixed", type=Path, help="a p2med build folder for the mixed case (default: build one)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = [run_case("ct", imaging_set(tmp / "ct", "CT", 4 * args.steps), 4, args.steps, args.rounds,
                            tmp / "w1"),
                   run_case("xray", imaging_set(tmp / "xr", "XR", 8 * args.steps), 8, args.steps, args.rounds,
                            tmp / "w2"),
                   run_case("mixed", args.mixed or hospital_set(tmp / "hosp"), 8, args.steps, args.rounds, tmp / "w3")]
    by = {r["case"]: r for r in results}
    summary = {"ct_ratio": by["ct"]["ratio"], "xray_ratio": by["xray"]["ratio"], "mixed_ratio": by["mixed"]["ratio"],
               "ours_useful_peak_fraction": statistics.median(r["ours_useful_peak_fraction"] for r in results),
               "stock_peak_fraction": statistics.median(r["stock_peak_fraction"] for r in results),
               "max_loss_rel_diff": max(r["max_loss_rel_diff"] for r in results), "cases": results}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
