"""The shuffled-image control: the same benchmark with each exam's images swapped for another exam's.

Within a task, samples are grouped by their image layout (images per turn), and each group's image lists
are rotated by a seeded derangement, so every sample keeps its text (prompts, priors' reports) but sees the
images of another patient's exam. A model that really reads the images falls to chance on it; a model that
guesses from the text does not. Example: ``shuffle_images(samples, seed=0)``.
"""

from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np


def shuffle_images(samples: list[dict], seed: int = 0) -> list[dict]:
    """Copies of ``samples`` whose images come from another sample of the same task and layout."""
    out = [copy.deepcopy(s) for s in samples]
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, s in enumerate(out):
        if s["images"]:
            groups[(s["task"], tuple(len(t["images"]) for t in s["turns"]))].append(i)
    rng = np.random.default_rng([seed, 11])
    for key in sorted(groups):
        idx = groups[key]
        if len(idx) < 2:
            continue
        order = [idx[j] for j in rng.permutation(len(idx))]
        for a, b in zip(order, order[1:] + order[:1]):      # a cycle: nobody keeps their own images
            out[a]["images"] = copy.deepcopy(samples[b]["images"])
            out[a].setdefault("meta", {})["images_from"] = samples[b]["sample_id"]
    return out
