"""How much int8 serving changes a trained model's answers: the same held-out prompts decoded greedily by the
fast decoder with float32 weights and with int8 weights (``p2med serve ... quantize=int8``), in one run.

For each of ``--n`` benchmark samples (spread over the tasks, images from the ingest cache) both decoders write
up to ``--max-new-tokens`` tokens; printed per task and overall: the share of answers that are identical, the
share of tokens equal position by position, and each decoder's mean step time at batch 1. Random-weight models
are no use here (their logits are nearly flat, so any change flips the argmax): give a trained checkpoint,
e.g. the demo's. Run: ``PYTHONPATH=src python bench/serve_int8_agreement.py --model RUN/model/stage3/final
--bench RUN/held_out/dataset/benchmark --images RUN/held_out/cache``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from p2med.eval.adapters import P2MedGenerator  # noqa: E402
from p2med.eval.benchmark import load_benchmark  # noqa: E402
from p2med.model.generate import GenerationConfig, model_batch  # noqa: E402
from p2med.serve.fast_decode import decoder_for  # noqa: E402


def spread(samples: list, n: int) -> list:
    """Round-robin over tasks: n samples, every task represented."""
    by_task = defaultdict(list)
    for s in samples:
        by_task[s["task"]].append(s)
    out, i = [], 0
    while len(out) < n and any(i < len(v) for v in by_task.values()):
        out += [v[i] for v in by_task.values() if i < len(v)]
        i += 1
    return out[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = P2MedGenerator(args.model, args.images)
    model, processor, tok = gen.model, gen.processor, gen.tokenizer
    model.merge_lora()
    model.eval()
    decoders = {q: decoder_for(model, q) for q in ("none", "int8")}
    samples, _ = load_benchmark(args.bench)
    picked = spread([s.raw for s in samples], args.n)
    cfg = GenerationConfig(max_new_tokens=args.max_new_tokens)
    same, equal, total, seconds = defaultdict(int), defaultdict(int), defaultdict(int), defaultdict(float)
    count = defaultdict(int)
    for s in picked:
        batch = model_batch(model, processor, [gen.conversation(s)])
        out = {}
        for q, decode in decoders.items():
            t0 = time.perf_counter()
            out[q] = [int(t) for t in torch.stack(list(decode(model, batch, cfg, tok.eos_token_id)))[:, 0]]
            seconds[q] += time.perf_counter() - t0
        a, b = out["none"], out["int8"]
        count[s["task"]] += 1
        same[s["task"]] += a == b
        equal[s["task"]] += sum(x == y for x, y in zip(a, b))
        total[s["task"]] += max(len(a), len(b))
    rows = {t: {"samples": count[t], "identical_answers": round(same[t] / count[t], 3),
                "tokens_equal": round(equal[t] / total[t], 3)} for t in sorted(count)}
    for t, r in rows.items():
        print(f"{t:28s} {r['samples']:3d} samples  identical answers {r['identical_answers']:.3f}  "
              f"tokens equal {r['tokens_equal']:.3f}")
    n = sum(count.values())
    print(json.dumps({"samples": n, "identical_answers": round(sum(same.values()) / n, 3),
                      "tokens_equal": round(sum(equal.values()) / sum(total.values()), 3),
                      "float_s": round(seconds["none"], 2), "int8_s": round(seconds["int8"], 2), "per_task": rows}))


if __name__ == "__main__":
    main()
