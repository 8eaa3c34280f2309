"""The statistics every reported figure carries: mean with a t-distribution 95% CI, paired comparison of two
runs (paired t-test and a seeded bootstrap CI of the mean difference), weighted kappa and Spearman.

Conventions: n = 0 gives mean None; n = 1 gives a mean without an interval; zero spread gives the interval
[mean, mean] (scipy would return NaN); a paired test on identical scores gives t and p None, since there is
nothing to test. Knows nothing about tasks or metrics. Example: ``mean_ci([3, 4, 5])`` ->
``{"n": 3, "mean": 4.0, "sd": 1.0, "ci_low": 1.515..., "ci_high": 6.484..., "half_width": 2.484...}``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats as st


def _r(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean, sample sd and the two-sided t interval of the mean."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    n = int(x.size)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "ci_low": None, "ci_high": None, "half_width": None}
    mean = float(x.mean())
    if n == 1:
        return {"n": 1, "mean": _r(mean), "sd": None, "ci_low": None, "ci_high": None, "half_width": None}
    sd = float(x.std(ddof=1))
    half = float(st.t.ppf((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)) if sd > 0 else 0.0
    return {"n": n, "mean": _r(mean), "sd": _r(sd), "ci_low": _r(mean - half), "ci_high": _r(mean + half),
            "half_width": _r(half)}


def bootstrap_mean_ci(diffs: Sequence[float], n_resamples: int = 2000, seed: int = 0,
                      confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile bootstrap CI of the mean of ``diffs`` (resampling pairs), seeded: same input, same CI."""
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        return None, None
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 500):
        stop = min(start + 500, n_resamples)
        idx = rng.integers(0, d.size, size=(stop - start, d.size))
        means[start:stop] = d[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return _r(lo), _r(hi)


def paired(a: Sequence[float], b: Sequence[float], n_resamples: int = 2000, seed: int = 0,
           confidence: float = 0.95) -> dict:
    """Compare run B with run A on the same samples: mean difference B - A, paired t-test, t and bootstrap CIs."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples must have the same length, got {x.size} and {y.size}")
    d = y - x
    out = {"n": int(d.size), "mean_a": _r(x.mean()) if d.size else None, "mean_b": _r(y.mean()) if d.size else None}
    ci = mean_ci(d, confidence)
    out.update({"mean_diff": ci["mean"], "diff_ci_low": ci["ci_low"], "diff_ci_high": ci["ci_high"]})
    t = p = None
    if d.size >= 2 and float(d.std(ddof=1)) > 0:
        res = st.ttest_rel(y, x)
        t, p = float(res.statistic), float(res.pvalue)
    out.update({"t": _r(t), "p": _r(p)})
    lo, hi = bootstrap_mean_ci(d, n_resamples, seed, confidence)
    out.update({"bootstrap_ci_low": lo, "bootstrap_ci_high": hi, "bootstrap_resamples": n_resamples,
                "bootstrap_seed": seed})
    return out


def weighted_kappa(a: Sequence[int], b: Sequence[int], labels: Sequence[int] = (1, 2, 3, 4, 5),
                   weights: str = "quadratic") -> float | None:
    """Cohen's kappa with linear or quadratic disagreement weights over ordered ``labels``."""
    if len(a) != len(b):
        raise ValueError(f"kappa needs paired ratings, got {len(a)} and {len(b)}")
    if not a:
        return None
    index = {lab: i for i, lab in enumerate(labels)}
    k = len(labels)
    obs = np.zeros((k, k))
    for u, v in zip(a, b):
        obs[index[u], index[v]] += 1
    exp = np.outer(obs.sum(1), obs.sum(0)) / obs.sum()
    i, j = np.indices((k, k))
    w = np.abs(i - j) if weights == "linear" else (i - j) ** 2
    denom = float((w * exp).sum())
    if denom == 0:
        return None  # both raters used one and the same label: agreement beyond chance is undefined
    return _r(1 - float((w * obs).sum()) / denom)


def spearman(a: Sequence[float], b: Sequence[float]) -> dict:
    """Spearman's rho and its p-value (None when either side is constant or n < 3)."""
    if len(a) != len(b):
        raise ValueError(f"Spearman needs paired values, got {len(a)} and {len(b)}")
    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return {"n": len(a), "rho": None, "p": None}
    res = st.spearmanr(a, b)
    return {"n": len(a), "rho": _r(float(res.statistic)), "p": _r(float(res.pvalue))}
