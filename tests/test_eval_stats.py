"""Every statistic against scipy / scikit-learn, with the edge cases stated in ``p2med.eval.stats``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st
from sklearn.metrics import cohen_kappa_score

from p2med.eval.stats import bootstrap_mean_ci, mean_ci, paired, spearman, weighted_kappa

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("n", [2, 5, 30, 200])
def test_t_interval_matches_scipy(n):
    x = RNG.integers(1, 6, size=n).astype(float)
    x[0] = 1.0
    x[-1] = 5.0  # never constant
    ci = mean_ci(x)
    lo, hi = st.t.interval(0.95, n - 1, loc=x.mean(), scale=st.sem(x))
    assert ci["n"] == n and ci["mean"] == pytest.approx(x.mean(), abs=1e-6)
    assert (ci["ci_low"], ci["ci_high"]) == (pytest.approx(lo, abs=1e-6), pytest.approx(hi, abs=1e-6))


def test_t_interval_edges():
    assert mean_ci([])["mean"] is None
    one = mean_ci([4.0])
    assert one["mean"] == 4.0 and one["ci_low"] is None
    flat = mean_ci([3.0, 3.0, 3.0])
    assert (flat["ci_low"], flat["ci_high"]) == (3.0, 3.0)
    assert mean_ci([1.0, None, 3.0])["n"] == 2  # None = not scored, never a zero


def test_paired_t_matches_scipy():
    a = RNG.normal(3.0, 1.0, 40)
    b = a + RNG.normal(0.3, 0.5, 40)
    res = paired(a, b)
    ref = st.ttest_rel(b, a)
    assert res["t"] == pytest.approx(ref.statistic, abs=1e-5) and res["p"] == pytest.approx(ref.pvalue, abs=1e-6)
    assert res["mean_diff"] == pytest.approx((b - a).mean(), abs=1e-6)
    lo, hi = st.t.interval(0.95, 39, loc=(b - a).mean(), scale=st.sem(b - a))
    assert (res["diff_ci_low"], res["diff_ci_high"]) == (pytest.approx(lo, abs=1e-6), pytest.approx(hi, abs=1e-6))
    same = paired([1, 2, 3], [1, 2, 3])
    assert same["t"] is None and same["p"] is None and same["mean_diff"] == 0.0
    with pytest.raises(ValueError):
        paired([1, 2], [1])


def test_bootstrap_ci_agrees_with_scipy_and_is_seeded():
    d = RNG.normal(0.4, 1.0, 60)
    ours = bootstrap_mean_ci(d, n_resamples=20000, seed=1)
    ref = st.bootstrap((d,), np.mean, n_resamples=20000, method="percentile", rng=np.random.default_rng(2))
    tol = 0.05 * d.std(ddof=1)  # Monte Carlo error of two independent bootstraps
    assert ours[0] == pytest.approx(ref.confidence_interval.low, abs=tol)
    assert ours[1] == pytest.approx(ref.confidence_interval.high, abs=tol)
    assert bootstrap_mean_ci(d, 500, seed=3) == bootstrap_mean_ci(d, 500, seed=3)
    assert bootstrap_mean_ci([1.0]) == (None, None)


@pytest.mark.parametrize("weights", ["linear", "quadratic"])
def test_weighted_kappa_matches_sklearn(weights):
    a = RNG.integers(1, 6, 80)
    b = np.clip(a + RNG.integers(-1, 2, 80), 1, 5)
    ours = weighted_kappa(list(a), list(b), weights=weights)
    ref = cohen_kappa_score(a, b, weights=weights, labels=[1, 2, 3, 4, 5])
    assert ours == pytest.approx(ref, abs=1e-6)
    assert weighted_kappa([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]) == 1.0
    assert weighted_kappa([3, 3], [3, 3]) is None


def test_spearman_matches_scipy():
    a = list(RNG.integers(1, 6, 30))
    b = [x + float(RNG.normal()) for x in a]
    ref = st.spearmanr(a, b)
    res = spearman(a, b)
    assert res["rho"] == pytest.approx(ref.statistic, abs=1e-6) and res["p"] == pytest.approx(ref.pvalue, abs=1e-6)
    assert spearman([1, 1, 1], [1, 2, 3])["rho"] is None
