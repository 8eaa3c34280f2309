"""Controls that say how hard the demo's tasks are, on the same held-out samples as the model.

- ``chance``: the accuracy of the best constant answer, i.e. the share of the most frequent reference value
  (finding set, change set, diagnosis category) on the held-out set itself: an upper bound for any answer that
  ignores the input.
- ``swapped_reader``: what a perfect image reader scores on the shuffled-image control: each shuffled sample
  answered with the reference of the exam its images came from. A model that reads the images falls towards
  this figure, which lies below chance when the held-out set is dominated by one answer (normal exams).
- ``pixels``: multinomial logistic regression on downsampled pixels (X-ray: the frontal view at 24 x 24; CT:
  the first series resampled to 12 slices of 16 x 16), trained on the training hospital's exams, predicting
  the reference impression's finding set as one class.
- ``bag_of_words``: logistic regression on character 1-3-grams (tf-idf) of a record's prompt (its input
  sections), predicting the diagnosis category.
Labels come from the report text through the evaluation extractor, never from the synthetic ground truth.
Example: ``pixel_baseline(train, test, cache, cache_test)`` -> [0/1 per test radiology sample].
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from .metrics import RADIOLOGY, DemoScorer, diagnosis_key


def _finding_label(s: dict, scorer: DemoScorer) -> str:
    impression = s["turns"][-1]["target"].get("impression", "")
    return repr(sorted(map(repr, _present(scorer, impression, s["lang"]))))


def _present(scorer: DemoScorer, text: str, lang: str) -> set:
    from ..clinical.findings import present
    return present(scorer.impression(text, lang))


def _ref_changes(s: dict, scorer: DemoScorer) -> set:
    """The (finding..., change) tuples a follow-up's reference states (empty for a first exam)."""
    from ..clinical.findings import changes
    if len(s["turns"]) < 2:
        return set()
    return changes(scorer.impression(s["turns"][-1]["target"].get("impression", ""), s["lang"]))


def _change_label(s: dict, scorer: DemoScorer) -> str | None:
    ref = _ref_changes(s, scorer)
    return repr(sorted(map(repr, ref))) if ref else None


def _change_state_label(s: dict, scorer: DemoScorer) -> str | None:
    ref = _ref_changes(s, scorer)
    return repr(sorted({c[-1] for c in ref})) if ref else None


def _diagnosis_label(s: dict, scorer: DemoScorer) -> str | None:
    key = diagnosis_key(s["output_keys"])
    return scorer.category(s["turns"][-1]["target"].get(key, ""), s["lang"]) if key else None


def chance(samples: list[dict], scorer: DemoScorer | None = None) -> dict[str, dict[str, float]]:
    """{task: {figure: share of the most frequent reference value}} on ``samples``."""
    scorer = scorer or DemoScorer()
    labels: dict[tuple[str, str], list] = {}
    for s in samples:
        if s["task"] in RADIOLOGY:
            labels.setdefault((s["task"], "finding_location"), []).append(_finding_label(s, scorer))
            for figure, label in (("change", _change_label), ("change_state", _change_state_label)):
                c = label(s, scorer)
                if c is not None:
                    labels.setdefault((s["task"], figure), []).append(c)
        else:
            labels.setdefault((s["task"], "diagnosis"), []).append(_diagnosis_label(s, scorer))
    out: dict[str, dict[str, float]] = {}
    for (task, fig), vals in labels.items():
        out.setdefault(task, {})[fig] = round(Counter(vals).most_common(1)[0][1] / len(vals), 6)
    return out


def swapped_reader(samples: list[dict], shuffled: list[dict], scorer: DemoScorer | None = None
                   ) -> dict[str, dict[str, float]]:
    """{task: {finding_location: share}}: a perfect reader's score on ``shuffled`` (samples whose
    ``meta.images_from`` names the sample that lent them its images), the lender's finding set vs the own."""
    scorer = scorer or DemoScorer()
    by_id = {s["sample_id"]: s for s in samples}
    hits: dict[str, list[int]] = {}
    for s in shuffled:
        lender = by_id.get((s.get("meta") or {}).get("images_from"))
        if s["task"] in RADIOLOGY and lender is not None and s["sample_id"] in by_id:
            hits.setdefault(s["task"], []).append(
                int(_finding_label(lender, scorer) == _finding_label(by_id[s["sample_id"]], scorer)))
    return {t: {"finding_location": round(sum(v) / len(v), 6)} for t, v in hits.items()}


def _pixels(s: dict, cache: Path) -> np.ndarray:
    img = s["images"][s["turns"][-1]["images"][0]]
    arr = np.load(cache / img["array"]).astype(np.float32)[: img.get("true_slices") or None]   # [S, H, W]
    if s["task"] == "xray_report":
        h = arr.shape[-1] // 24
        return arr[0, : 24 * h, : 24 * h].reshape(24, h, 24, h).mean((1, 3)).ravel()
    z = np.linspace(0, len(arr) - 1, 12).round().astype(int)
    h = arr.shape[-1] // 16
    return arr[z][:, : 16 * h, : 16 * h].reshape(12, 16, h, 16, h).mean((2, 4)).ravel()


def pixel_baseline(train: list[dict], test: list[dict], cache: Path, test_cache: Path, task: str,
                   scorer: DemoScorer | None = None) -> list[int]:
    """0/1 per ``test`` sample of ``task``: the logistic regression's finding set equals the reference's."""
    from sklearn.linear_model import LogisticRegression

    scorer = scorer or DemoScorer()
    tr = [s for s in train if s["task"] == task]
    te = [s for s in test if s["task"] == task]
    if not tr or not te:
        return []
    y = [_finding_label(s, scorer) for s in tr]
    if len(set(y)) < 2:
        return [int(_finding_label(s, scorer) == y[0]) for s in te]
    x = np.stack([_pixels(s, cache) for s in tr])
    mean, sd = x.mean(0), x.std(0) + 1e-6
    clf = LogisticRegression(max_iter=500, tol=1e-3, C=0.1).fit((x - mean) / sd, y)   # 8 s, not 34 (docs/demo.md)
    pred = clf.predict((np.stack([_pixels(s, test_cache) for s in te]) - mean) / sd)
    return [int(p == _finding_label(s, scorer)) for p, s in zip(pred, te)]


def bag_of_words_baseline(train: list[dict], test: list[dict], task: str, scorer: DemoScorer | None = None
                          ) -> list[int]:
    """0/1 per ``test`` record sample of ``task``: the predicted category equals the reference's."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    scorer = scorer or DemoScorer()
    tr = [s for s in train if s["task"] == task and _diagnosis_label(s, scorer)]
    te = [s for s in test if s["task"] == task]
    if not tr or not te:
        return []
    y = [_diagnosis_label(s, scorer) for s in tr]
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
    x = vec.fit_transform([s["turns"][-1]["human"] for s in tr])
    if len(set(y)) < 2:
        return [int(_diagnosis_label(s, scorer) == y[0]) for s in te]
    clf = LogisticRegression(max_iter=2000, C=10.0).fit(x, y)
    pred = clf.predict(vec.transform([s["turns"][-1]["human"] for s in te]))
    return [int(p == _diagnosis_label(s, scorer)) for p, s in zip(pred, te)]
