"""How far the judge can be trusted: agreement with clinicians, score variance over repeated judging, position
bias (reference and candidate swapped in the prompt) and length bias.

Clinician scores come as CSV ``sample_id,component,metric,score,rater`` (metric accuracy | comprehensiveness,
score 1..5); agreement is quadratic- and linear-weighted kappa and Spearman per rater against the judge's main
(temperature 0) scores, plus rater-vs-rater kappa. Only real judgings enter (not the floor given to a missing
section). Example CSV line: ``xray_report/V1/2,impression,accuracy,4,dr_li``.
"""

from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..common.errors import P2MedError
from .metrics import tokens
from .stats import mean_ci, paired, spearman, weighted_kappa

CSV_COLUMNS = ("sample_id", "component", "metric", "score", "rater")


def read_clinician_scores(path: str | Path) -> list[dict]:
    """Rows of the clinicians' CSV, checked: a bad row names the file, the row number and the field."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise P2MedError(f"{path}: missing column(s) {missing}; expected {list(CSV_COLUMNS)}")
            rows = []
            for i, row in enumerate(reader, 2):
                score = (row["score"] or "").strip()
                if not score.isdigit() or not 1 <= int(score) <= 5:
                    raise P2MedError(f"{path} row {i}: field score must be an integer 1..5, got {score!r}")
                if row["metric"] not in ("accuracy", "comprehensiveness"):
                    raise P2MedError(f"{path} row {i}: field metric must be accuracy or comprehensiveness, "
                                     f"got {row['metric']!r}")
                if not (row["rater"] or "").strip() or not (row["sample_id"] or "").strip():
                    raise P2MedError(f"{path} row {i}: fields sample_id and rater must not be empty")
                rows.append({"sample_id": row["sample_id"].strip(), "component": row["component"].strip(),
                             "metric": row["metric"], "score": int(score), "rater": row["rater"].strip()})
    except OSError as exc:
        raise P2MedError(f"{path}: cannot read clinician scores ({exc.strerror})") from exc
    return rows


def _agreement(a: list[int], b: list[int]) -> dict:
    return {"n": len(a), "kappa_quadratic": weighted_kappa(a, b, weights="quadratic"),
            "kappa_linear": weighted_kappa(a, b, weights="linear"), "spearman": spearman(a, b)["rho"],
            "exact_agreement": round(float(np.mean(np.equal(a, b))), 6) if a else None,
            "mean_diff_judge_minus_rater": round(float(np.mean(np.subtract(a, b))), 6) if a else None}


def clinician_agreement(rows: list[dict], judge_rows: list[dict]) -> dict:
    """Judge vs each rater on the items both scored; raters against each other."""
    judged = {(r["sample_id"], r["component"], r["metric"]): r["score"] for r in judge_rows
              if r["variant"] == "main" and r["score"] is not None}
    by_rater: dict[str, dict] = defaultdict(dict)
    for r in rows:
        by_rater[r["rater"]][(r["sample_id"], r["component"], r["metric"])] = r["score"]
    out: dict = {"raters": {}, "between_raters": {}, "unmatched_rows": 0}
    for rater, scores in sorted(by_rater.items()):
        keys = sorted(k for k in scores if k in judged)
        out["unmatched_rows"] += len(scores) - len(keys)
        out["raters"][rater] = _agreement([judged[k] for k in keys], [scores[k] for k in keys])
    for r1, r2 in itertools.combinations(sorted(by_rater), 2):
        keys = sorted(set(by_rater[r1]) & set(by_rater[r2]))
        out["between_raters"][f"{r1} vs {r2}"] = _agreement([by_rater[r1][k] for k in keys],
                                                            [by_rater[r2][k] for k in keys])
    return out


def position_bias(judge_rows: list[dict], seed: int = 0, n_resamples: int = 2000) -> dict:
    """Per metric: score with the candidate first minus score with the reference first, on the same items."""
    pairs: dict[str, dict[tuple, dict]] = defaultdict(lambda: defaultdict(dict))
    for r in judge_rows:
        if r["variant"] in ("main", "swapped") and r["score"] is not None:
            pairs[r["metric"]][(r["sample_id"], r["component"])][r["variant"]] = r["score"]
    out = {}
    for metric, items in sorted(pairs.items()):
        both = [v for v in items.values() if len(v) == 2]
        main, swapped = [v["main"] for v in both], [v["swapped"] for v in both]
        res = paired(main, swapped, n_resamples=n_resamples, seed=seed) if both else {"n": 0}
        res["share_changed"] = round(float(np.mean(np.not_equal(main, swapped))), 6) if both else None
        out[metric] = res
    return out


def repeat_variance(judge_rows: list[dict]) -> dict:
    """Per metric: spread of one item's scores over its repeated judgings (main + repeats)."""
    scores: dict[str, dict[tuple, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in judge_rows:
        if (r["variant"] == "main" or r["variant"].startswith("repeat")) and r["score"] is not None:
            scores[r["metric"]][(r["sample_id"], r["component"])].append(r["score"])
    out = {}
    for metric, items in sorted(scores.items()):
        multi = [v for v in items.values() if len(v) >= 2]
        if not multi:
            continue
        sds = [float(np.std(v)) for v in multi]
        out[metric] = {"items": len(multi), "judgings_per_item": round(float(np.mean([len(v) for v in multi])), 3),
                       "mean_sd": round(float(np.mean(sds)), 6),
                       "mean_range": round(float(np.mean([max(v) - min(v) for v in multi])), 6),
                       "share_varying": round(float(np.mean([max(v) != min(v) for v in multi])), 6)}
    return out


def length_bias(items: list[dict]) -> dict:
    """Per judged metric: does the judge reward length? Spearman of score vs candidate length and vs the
    candidate/reference length ratio, and mean scores of candidates longer vs not longer than the reference."""
    out = {}
    for metric in ("accuracy", "comprehensiveness"):
        rows = [(len(tokens(it["candidate"], it["lang"])), max(1, len(tokens(it["reference"], it["lang"]))),
                 it["metrics"][f"judge_{metric}"]) for it in items
                if it["judge"].get(metric) == "ok"]
        if not rows:
            continue
        cand, ref, score = (list(x) for x in zip(*rows))
        ratio = [c / r for c, r in zip(cand, ref)]
        longer = [s for s, q in zip(score, ratio) if q > 1]
        shorter = [s for s, q in zip(score, ratio) if q <= 1]
        out[metric] = {"n": len(rows), "spearman_length": spearman(cand, score)["rho"],
                       "spearman_length_ratio": spearman(ratio, score)["rho"],
                       "mean_score_longer_than_reference": mean_ci(longer)["mean"], "n_longer": len(longer),
                       "mean_score_not_longer": mean_ci(shorter)["mean"], "n_not_longer": len(shorter)}
    return out
