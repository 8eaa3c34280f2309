"""The demo's clinical figures, per held-out benchmark sample, from a model's answers and the references.

- ``finding_location``: radiology samples; the set of findings the impression says are present now, each as
  (pattern, side, zone or lobe), equals the reference's (a normal exam: both empty). Extracted by the
  evaluation's finding extractor (``p2med.clinical.findings``), never from the synthetic ground truth.
- ``change``: follow-up samples (with a prior turn) whose reference states a change; the set of (finding,
  new | improved | progressed | unchanged | resolved) equals the reference's (so the finding and its location
  must be right too).
- ``change_state``: the same samples; the set of change words alone (improved, resolved, ...) equals the
  reference's, whichever finding they are said of: whether the comparison with the prior was right.
- ``diagnosis``: record samples; the primary normalised category of the answer's diagnosis section equals the
  reference's (``p2med.clinical.categories``).
Each figure is a list of 0/1 values; ``summarise`` gives mean and t-interval (``p2med.eval.stats.mean_ci``).
Example: ``score_samples(samples, answers)["xray_report"]["finding_location"]`` -> [1, 0, 1, ...].
"""

from __future__ import annotations

from collections import defaultdict

from ..clinical.categories import CategoryNormaliser
from ..clinical.findings import FindingExtractor, changes, present
from ..eval.benchmark import DIAGNOSIS_KEYS, IMAGE_TASKS as RADIOLOGY
from ..eval.stats import mean_ci
from ..text.sections import parse_sections



class DemoScorer:
    def __init__(self) -> None:
        self.extractor = FindingExtractor()
        self.normaliser = CategoryNormaliser.from_yaml()

    def impression(self, text: str, lang: str) -> list:
        return self.extractor.extract(text, lang)

    def finding_location(self, reference: str, candidate: str, lang: str) -> int:
        return int(present(self.impression(reference, lang)) == present(self.impression(candidate, lang)))

    def change(self, reference: str, candidate: str, lang: str, word_only: bool = False) -> int | None:
        """1/0: the candidate states the reference's changes (``word_only``: the change words alone, whichever
        finding they are said of); None when the reference states none."""
        def stated(text: str) -> set:
            found = changes(self.impression(text, lang))
            return {c[-1] for c in found} if word_only else found
        ref = stated(reference)
        return None if not ref else int(ref == stated(candidate))

    def change_state(self, reference: str, candidate: str, lang: str) -> int | None:
        return self.change(reference, candidate, lang, word_only=True)

    def category(self, text: str, lang: str) -> str | None:
        cats = self.normaliser.normalise(text, lang).categories
        return cats[0] if cats else None

    def diagnosis(self, reference: str, candidate: str, lang: str) -> int:
        ref = self.category(reference, lang)
        return int(ref is not None and ref == self.category(candidate, lang))


def diagnosis_key(output_keys: list[str]) -> str | None:
    return next((k for k in DIAGNOSIS_KEYS if k in output_keys), None)


def score_samples(samples: list[dict], answers: dict[str, str], scorer: DemoScorer | None = None
                  ) -> dict[str, dict[str, list[int]]]:
    """{task: {figure: [0/1 per sample]}} for the samples that have an answer; a missing section counts as
    an empty answer (it is wrong unless the reference is empty too)."""
    scorer = scorer or DemoScorer()
    out: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for s in samples:
        if s["sample_id"] not in answers:
            continue
        lang, keys = s["lang"], s["output_keys"]
        target = s["turns"][-1]["target"]
        parsed = parse_sections(answers[s["sample_id"]], keys).sections
        if s["task"] in RADIOLOGY:
            ref, cand = target.get("impression", ""), parsed.get("impression", "")
            out[s["task"]]["finding_location"].append(scorer.finding_location(ref, cand, lang))
            if len(s["turns"]) > 1:
                for figure in ("change", "change_state"):
                    c = getattr(scorer, figure)(ref, cand, lang)
                    if c is not None:
                        out[s["task"]][figure].append(c)
        else:
            key = diagnosis_key(keys)
            if key:
                out[s["task"]]["diagnosis"].append(scorer.diagnosis(target.get(key, ""), parsed.get(key, ""), lang))
    return {t: dict(v) for t, v in out.items()}


def summarise(scores: dict[str, dict[str, list[int]]]) -> dict[str, dict[str, dict]]:
    return {t: {f: mean_ci(v) for f, v in figs.items()} for t, figs in scores.items()}
