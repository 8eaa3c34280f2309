"""Serving speed: our engine (merged LoRA, plain Llama decoder, concurrent requests batched) against stock
Hugging Face ``generate`` on the peft-wrapped LLM, on the same request, in one run.

The model is the tiny preset (``configs/model/tiny.yaml``, random weights, LoRA on q,k,v,o with non-zero B, a
4,096-token BPE trained on synthetic reports). The request: 64 prompt tokens and one image (32 visual tokens),
128 new tokens, greedy. Both sides must decode all 128 tokens: stock gets ``min_new_tokens=128``, our engine a
tokenizer view whose EOS never occurs (random weights would otherwise stop at different points).

- stock: ``llm.generate(inputs_embeds=..., attention_mask=..., max_new_tokens=128, min_new_tokens=128)`` on the
  peft model, batch 1 and batch 8 (the embeddings with visual tokens are built once, outside the timing).
- ours: the model saved as a checkpoint and served as ``p2med serve`` does, in a fresh process: the engine's
  thread loads it (LoRA merged, ``--quantize`` none or int8) and decodes; ``Engine.submit`` of 1 request, then
  of 8 at once (batched together), image encoding, perceiver and prefill included; the first-token latency is
  submit -> first token of the single request. (A separate process because the stock side runs torch in
  this process's main thread, which the server never does: see ``p2med.serve.engine``.)

Tokens/s count new tokens of all requests over wall time (best of ``--reps``). The load average is printed:
the machine is shared. The model is the tiny preset, or with ``LLM_58M`` overrides the issue's 58 M-parameter
anchor. Run: ``PYTHONPATH=src python bench/serve.py [--reps 3] [--threads 2] [--quantize int8] [key=value ...]``.
How int8 changes a trained model's answers: ``bench/serve_int8_agreement.py``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from p2med.config import load_config  # noqa: E402
from p2med.model.build import build_model  # noqa: E402
from p2med.model.checkpoint import save_checkpoint  # noqa: E402
from p2med.model.config import ModelConfig  # noqa: E402
from p2med.model.generate import GenerationConfig  # noqa: E402
from p2med.model.tokenizer import train_tokenizer  # noqa: E402
from p2med.serve.engine import Engine  # noqa: E402
from p2med.synth.findings import Finding  # noqa: E402
from p2med.synth.reports import write_report  # noqa: E402

NEW, PROMPT = 128, 64
LLM_58M = ["llm.hf_config.hidden_size=768", "llm.hf_config.intermediate_size=2048",
           "llm.hf_config.num_hidden_layers=8", "llm.hf_config.num_attention_heads=12",
           "llm.hf_config.num_key_value_heads=12"]


class NoEos:
    """The tokenizer, but its EOS id never occurs: every request decodes exactly NEW tokens."""

    def __init__(self, tok):
        self._tok = tok
        self.eos_token_id = -1

    def __getattr__(self, name):
        return getattr(self._tok, name)


def texts(n: int = 400) -> list[str]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        f = [Finding(("patchy", "consolidation", "ggo")[i % 3], ("right", "left")[i % 2], ("upper", "lower")[i % 2])]
        out += list(write_report(rng, ("XR", "CT")[i % 2], f if i % 4 else []))
    return out


def request(tok, corpus: list[str]) -> dict:
    """One image and exactly PROMPT text tokens in the encoded prompt."""
    text = "".join(corpus)
    lo, hi = 1, len(text)
    while lo < hi:                                   # the longest prefix whose whole prompt is PROMPT tokens
        mid = (lo + hi + 1) // 2
        n = len(tok(f"Human: <image>{text[:mid]}", add_special_tokens=False)["input_ids"])
        lo, hi = (mid, hi) if n <= PROMPT else (lo, mid - 1)
    image = np.random.default_rng(1).random((1, 336, 336), dtype=np.float32)
    return {"turns": [{"human": "<image>" + text[:lo]}], "images": [image], "lang": "zh"}


def stock(model, processor, conv, batch: int, reps: int) -> float:
    from p2med.model.generate import model_batch

    b = model_batch(model, processor, [conv] * batch)
    with torch.no_grad():
        visual = model.visual_tokens(b["pixel_values"], None, b["slice_mask"])
        embeds = model.embed(b["input_ids"], b["image_mask"], visual)            # [B, T, D]
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            out = model.llm.model.generate(inputs_embeds=embeds, attention_mask=b["attention_mask"],
                                           max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False)
            best = min(best, time.perf_counter() - t0)
            assert out.shape == (batch, NEW), out.shape
    return batch * NEW / best


def ours(engine: Engine, conv, batch: int, reps: int) -> tuple[float, float]:
    best, first = float("inf"), float("inf")
    cfg = GenerationConfig(max_new_tokens=NEW)
    for _ in range(reps):
        t0 = time.perf_counter()
        jobs = [engine.submit(conv, cfg) for _ in range(batch)]
        for j in jobs:
            list(engine.token_ids(j, 600))
        best = min(best, time.perf_counter() - t0)
        assert all(j.completion_tokens == NEW for j in jobs)
        first = min(first, jobs[0].first_token_at - jobs[0].queued_at)
    return batch * NEW / best, first


def serve_and_measure(folder: str, conv: dict, threads: int, quantize: str, reps: int, out: "mp.Queue") -> None:
    """In a fresh process: the server's engine on the checkpoint, measured (runs in a spawned child)."""
    from p2med.serve.server import load_model

    torch.set_num_threads(threads)

    engine = Engine.loading(lambda: load_model(folder, threads, quantize), max_batch=8, batch_wait_s=0.01,
                            threads=threads)
    engine.start()
    engine.tokenizer = NoEos(engine.tokenizer)
    o1, first = ours(engine, conv, 1, reps)
    o8, _ = ours(engine, conv, 8, reps)
    engine.stop(5)
    out.put((o1, o8, first))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quantize", choices=("none", "int8"), default="none",
                    help="our engine's LLM weights (serve config `quantize`)")
    ap.add_argument("overrides", nargs="*", help="model config key=value, e.g. the issue's 58 M-parameter LLM: "
                    + " ".join(LLM_58M))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    corpus = texts()
    tok = train_tokenizer(corpus, vocab_size=4096, min_frequency=3)
    cfg = load_config(ModelConfig, ROOT / "configs" / "model" / "tiny.yaml", ["trainable.llm=lora", *args.overrides])
    torch.manual_seed(0)
    model, processor, tok = build_model(cfg, tokenizer=tok)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    model.eval()
    conv = request(tok, corpus)
    n_llm = sum(p.numel() for p in model.llm.parameters())
    print(f"tiny preset{' with ' + ' '.join(args.overrides) if args.overrides else ''}: LLM {n_llm / 1e6:.1f} M parameters (with LoRA), prompt {PROMPT} text + 32 image tokens, "
          f"{NEW} new tokens; torch threads {args.threads}; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(model, processor, Path(tmp) / "ckpt")
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        child = ctx.Process(target=serve_and_measure, args=(str(Path(tmp) / "ckpt"), conv, args.threads,
                                                            args.quantize, args.reps, queue))
        child.start()
        o1, o8, first = queue.get(timeout=1800)
        child.join()
    print(f"ours (engine, merged LoRA, plain decoder, quantize={args.quantize}): 1 request {o1:.1f} tokens/s "
          f"(first token {first:.3f} s), 8 concurrent {o8:.1f} tokens/s; load average {os.getloadavg()[0]:.2f}")
    s1 = stock(model, processor, conv, 1, args.reps)
    s8 = stock(model, processor, conv, 8, args.reps)
    print(f"stock HF generate + peft: batch 1 {s1:.1f} tokens/s, batch 8 {s8:.1f} tokens/s; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(json.dumps({"ours_1_tokens_per_s": round(o1, 1), "stock_1_tokens_per_s": round(s1, 1),
                      "ratio_1": round(o1 / s1, 2), "ours_8_tokens_per_s": round(o8, 1),
                      "stock_8_tokens_per_s": round(s8, 1), "ratio_8": round(o8 / s8, 2),
                      "ours_first_token_s": round(first, 3), "quantize": args.quantize}))


if __name__ == "__main__":
    main()
