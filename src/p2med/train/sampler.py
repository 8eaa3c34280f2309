"""The batch plan: modality-homogeneous, length-grouped, shuffled by (seed, epoch), identical on every rank.

A stage's plan is the list of global micro-batches in training order. Per epoch, the image-text and the text
samples are shuffled apart with ``Random(f"{seed}:{epoch}")``; each shuffled window of ``batch_size *
length_group`` samples is sorted by length and cut into batches (little padding, still random), and the
batches of both kinds are shuffled together. Every rank builds the same plan and takes its contiguous share of
each global batch (``shard``), so one process with the same ``batch_size`` sees the same global batches as N
ranks. A batch with fewer samples than ranks is dropped (counted). It knows lengths and kinds, nothing else.

Example::

    plan = plan_batches(lengths, has_images, batch_size=8, seed=0, epochs=2, length_group=16)
    plan.batches[0]            # [17, 4, 96, ...] sample indices, all image-text or all text
    shard(plan.batches[0], rank=1, world=2)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Sequence


@dataclass
class Plan:
    batches: list[list[int]] = field(default_factory=list)   # global micro-batches in order
    epochs: list[int] = field(default_factory=list)          # the epoch of each batch
    skipped_text: int = 0        # text-only batches left out (a stage whose LLM is frozen gets no gradient)
    dropped_small: int = 0       # batches with fewer samples than ranks


def epoch_batches(lengths: Sequence[int], has_images: Sequence[bool], batch_size: int, seed: int, epoch: int,
                  length_group: int) -> list[list[int]]:
    rng = random.Random(f"{seed}:{epoch}")
    batches: list[list[int]] = []
    window = batch_size * length_group
    for kind in (True, False):
        idx = [i for i, h in enumerate(has_images) if bool(h) == kind]
        rng.shuffle(idx)
        for w in range(0, len(idx), window):
            chunk = sorted(idx[w: w + window], key=lambda i: (lengths[i], i))
            batches += [chunk[k: k + batch_size] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def plan_batches(lengths: Sequence[int], has_images: Sequence[bool], batch_size: int, seed: int, epochs: int,
                 length_group: int, world: int = 1, skip_text: bool = False) -> Plan:
    plan = Plan()
    for epoch in range(epochs):
        for batch in epoch_batches(lengths, has_images, batch_size, seed, epoch, length_group):
            if skip_text and not has_images[batch[0]]:
                plan.skipped_text += 1
            elif len(batch) < world:
                plan.dropped_small += 1
            else:
                plan.batches.append(batch)
                plan.epochs.append(epoch)
    return plan


def shard(batch: Sequence[int], rank: int, world: int) -> list[int]:
    """Rank ``rank``'s contiguous share of a global batch (sizes differ by at most one)."""
    base, extra = divmod(len(batch), world)
    start = rank * base + min(rank, extra)
    return list(batch[start: start + base + (1 if rank < extra else 0)])


def length_buckets(lengths: Sequence[int], overhead: int = 64) -> list[list[int]]:
    """Split a batch (positions 0..n-1) into buckets of similar length that minimise the tokens computed:
    sum over buckets of size * longest + ``overhead`` tokens per extra forward. Optimal over contiguous runs
    of the length order (dynamic programming, O(n^2)); the loss is normalised by the global token count, so
    the gradient is that of the whole batch."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    n = len(order)
    best = [0.0] + [float("inf")] * n   # best[j]: cost of the first j (in length order)
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = lengths[order[j - 1]]
        for i in range(j):
            cost = best[i] + (j - i) * longest + (overhead if i else 0)
            if cost < best[j]:
                best[j], cut[j] = cost, i
    buckets, j = [], n
    while j > 0:
        buckets.append(order[cut[j]: j])
        j = cut[j]
    return buckets[::-1]
