"""Per-finding and per-diagnosis precision, recall and F1 of a candidate text against a reference text.

Findings match at three depths: ``pattern``, ``side`` (pattern + side) and ``full`` (pattern + side + zone/lobe);
change states match as (finding, state). Diagnoses match as normalised categories (uncertain ones count, negated
ones do not). A sample where reference and candidate both name nothing scores 1 (they agree); precision with
nothing predicted is 1 when nothing was to be found, else 0 (and recall alike). ``Tally`` sums counts over a
benchmark per class (per finding pattern, per diagnosis category) for micro and macro figures.
Example: ``ClinicalScorer().findings("右肺下野斑片影", "右肺下野斑片影，左侧胸腔积液")["full"].precision`` -> 0.5.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable

from .categories import CategoryNormaliser
from .findings import FindingExtractor, FindingMention, changes, present

DEPTHS = ("pattern", "side", "full")
CRITICAL = ("effusion", "consolidation", "pneumothorax")


@dataclass
class PRF:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @classmethod
    def of(cls, reference: set, candidate: set) -> "PRF":
        return cls(len(reference & candidate), len(candidate - reference), len(reference - candidate))

    def __iadd__(self, other: "PRF") -> "PRF":
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        return self

    @property
    def precision(self) -> float:
        if self.tp + self.fp == 0:
            return 1.0 if self.fn == 0 else 0.0
        return self.tp / (self.tp + self.fp)

    @property
    def recall(self) -> float:
        if self.tp + self.fn == 0:
            return 1.0 if self.fp == 0 else 0.0
        return self.tp / (self.tp + self.fn)

    @property
    def f1(self) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        return 1.0 if denom == 0 else 2 * self.tp / denom

    def to_json(self) -> dict:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": round(self.precision, 6),
                "recall": round(self.recall, 6), "f1": round(self.f1, 6)}


class Tally:
    """Counts per class over many samples: ``add(ref_keys, cand_keys)`` with ``classify(key) -> class``."""

    def __init__(self, classify: Callable[[Hashable], str] = str) -> None:
        self.classify = classify
        self.per_class: dict[str, PRF] = defaultdict(PRF)
        self.support: dict[str, int] = defaultdict(int)

    def add(self, reference: Iterable[Hashable], candidate: Iterable[Hashable]) -> None:
        ref, cand = set(reference), set(candidate)
        for key in ref | cand:
            cls = self.classify(key)
            self.per_class[cls] += PRF.of(ref & {key}, cand & {key})
            self.support[cls] += key in ref

    def to_json(self) -> dict:
        micro = PRF()
        for prf in self.per_class.values():
            micro += prf
        classes = sorted(self.per_class)
        macro = {m: (round(sum(getattr(self.per_class[c], m) for c in classes) / len(classes), 6) if classes else None)
                 for m in ("precision", "recall", "f1")}
        return {"micro": micro.to_json(), "macro": macro,
                "per_class": {c: {**self.per_class[c].to_json(), "support": self.support[c]} for c in classes}}


class ClinicalScorer:
    """Extractor-based comparison of two texts; one instance serves a whole benchmark."""

    def __init__(self, normaliser: CategoryNormaliser | None = None, extractor: FindingExtractor | None = None,
                 critical: tuple[str, ...] = CRITICAL) -> None:
        self.normaliser = normaliser or CategoryNormaliser.from_yaml()
        self.extractor = extractor or FindingExtractor(self.normaliser.config.cues)
        self.critical = critical

    def mentions(self, text: str, lang: str) -> list[FindingMention]:
        return self.extractor.extract(text or "", lang)

    def findings(self, reference: str, candidate: str, lang: str = "zh") -> dict:
        """PRF per depth, change-state PRF (None when neither text states a change) and critical misses."""
        ref, cand = self.mentions(reference, lang), self.mentions(candidate, lang)
        out: dict = {d: PRF.of(present(ref, d), present(cand, d)) for d in DEPTHS}
        rc, cc = changes(ref), changes(cand)
        out["change"] = PRF.of(rc, cc) if rc or cc else None
        crit_ref = {k for k in present(ref, "side") if k[0] in self.critical}
        out["critical_total"] = len(crit_ref)
        out["critical_missed"] = len(crit_ref - present(cand, "side"))
        out["keys"] = {"reference": sorted(present(ref, "full"), key=repr),
                       "candidate": sorted(present(cand, "full"), key=repr)}
        return out

    def categories(self, text: str, lang: str = "zh") -> list[str]:
        return self.normaliser.normalise(text or "", lang).categories

    def diagnoses(self, reference: str, candidate: str, lang: str = "zh") -> tuple[PRF, list[str], list[str]]:
        """PRF over normalised categories, with both category lists."""
        ref, cand = self.categories(reference, lang), self.categories(candidate, lang)
        return PRF.of(set(ref), set(cand)), ref, cand
