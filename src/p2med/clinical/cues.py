"""Negation and uncertainty cues and their scope, for Chinese and English clinical text.

A forward cue (未见, 无, 考虑, no, possible) covers the mentions after it up to the end of its clause or a
scope breaker (但, but); a backward cue (待排, 不能排除, ？, 阴性, ruled out) covers the mention right before it.
Cues are matched longest first, so 不能排除 (uncertain) is never read as 排除 (negated); a cue inside a mention
(the 未见 of 未见明显异常) is part of the mention, not a cue. Knows nothing about what the mentions are.
Example: ``CueScanner(DEFAULT_CUES["zh"], "zh").scan("未见斑片影，考虑肺炎", [(2, 5), (8, 10)])``
-> ``[("未见", None), (None, "考虑")]`` (the negation cue and the uncertainty cue of each mention).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..config import check


@dataclass
class Cues:
    negation_forward: list[str] = field(default_factory=list)     # negate what follows in the clause
    negation_backward: list[str] = field(default_factory=list)    # negate the mention just before
    uncertainty_forward: list[str] = field(default_factory=list)  # hedge what follows in the clause
    uncertainty_backward: list[str] = field(default_factory=list) # hedge the mention just before
    breakers: list[str] = field(default_factory=list)             # end a forward cue's scope (但, but)
    backward_gap: int = 6                                         # max characters from a mention to its backward cue

    def __post_init__(self) -> None:
        check(self.backward_gap >= 0, "backward_gap", f"must be >= 0, got {self.backward_gap}")
        for name in ("negation_forward", "negation_backward", "uncertainty_forward", "uncertainty_backward",
                     "breakers"):
            check(all(isinstance(w, str) and w.strip() for w in getattr(self, name)), name,
                  "cue words must be non-empty strings")


DEFAULT_CUES = {
    "zh": Cues(negation_forward=["未见", "未发现", "未闻及", "未触及", "无", "没有", "否认", "排除", "除外", "不伴"],
               negation_backward=["阴性", "（-）", "(-)", "已排除", "已除外"],
               uncertainty_forward=["可能", "考虑", "疑似", "疑为", "可疑", "倾向", "拟诊", "不除外", "不能除外", "不排除",
                                    "不能排除", "待排"],
               uncertainty_backward=["可能", "待排除", "待排", "待查", "不除外", "不能除外", "不能排除", "不排除", "？", "?",
                                     "可疑", "观察"],
               breakers=["但", "然而", "可见"]),
    "en": Cues(negation_forward=["no evidence of", "negative for", "free of", "without", "denies", "no", "not"],
               negation_backward=["ruled out", "excluded", "is absent", "are absent", "not seen"],
               uncertainty_forward=["cannot exclude", "cannot rule out", "suspicious for", "concerning for",
                                    "may represent", "possible", "possibly", "probable", "likely", "suspected",
                                    "questionable", "consider"],
               uncertainty_backward=["cannot be excluded", "not excluded", "is suspected", "?", "possible"],
               breakers=["but", "however", "although", "except", "with"], backward_gap=12),
}

CLAUSE_SEP = {"zh": r"[，,；;。！!？?\n：:]|(?<!\d)\.|\.(?!\d)", "en": r"[,;!?\n:]|(?<!\d)\.|\.(?!\d)"}
SENTENCE_SEP = {"zh": r"[；;。！!？?\n]|(?<!\d)\.|\.(?!\d)|(?=(?<![\d.])\d{1,2}[.、．](?!\d))",
                "en": r"[;!?\n]|(?<!\d)\.|\.(?!\d)"}


def spans_between(text: str, sep: str) -> list[tuple[int, int]]:
    """Spans of ``text`` between separator matches (empty ones dropped)."""
    out, start = [], 0
    for m in re.finditer(sep, text):
        if m.start() > start:
            out.append((start, m.start()))
        start = max(start, m.end())
    if start < len(text):
        out.append((start, len(text)))
    return out


def clauses(text: str, lang: str) -> list[tuple[int, int]]:
    return spans_between(text, CLAUSE_SEP[lang])


def sentences(text: str, lang: str) -> list[tuple[int, int]]:
    return spans_between(text, SENTENCE_SEP[lang])


def containing(spans: list[tuple[int, int]], pos: int) -> tuple[int, int]:
    """The span holding ``pos`` (or an empty span at ``pos`` when it lies on a separator)."""
    for s, e in spans:
        if s <= pos < e:
            return s, e
    return pos, pos


def word_regex(words: list[str], lang: str) -> re.Pattern | None:
    """Alternation of ``words``, longest first; English words get word boundaries and ignore case."""
    if not words:
        return None
    parts = []
    for w in sorted(set(words), key=len, reverse=True):
        p = re.escape(w)
        if lang == "en" and w[:1].isalnum():
            p = r"\b" + p
        if lang == "en" and w[-1:].isalnum():
            p = p + r"\b"
        parts.append(p)
    return re.compile("|".join(parts), re.IGNORECASE if lang == "en" else 0)


@dataclass(frozen=True)
class Cue:
    kind: str        # negation | uncertainty
    forward: bool    # True: scope after the cue; False: the mention before it
    start: int
    end: int


class CueScanner:
    """Finds cues in a text and decides, per mention span, whether it is negated and/or uncertain."""

    def __init__(self, cues: Cues, lang: str) -> None:
        self.lang = lang
        self.gap = cues.backward_gap
        table = [(w, "negation", True) for w in cues.negation_forward]
        table += [(w, "negation", False) for w in cues.negation_backward]
        table += [(w, "uncertainty", True) for w in cues.uncertainty_forward]
        table += [(w, "uncertainty", False) for w in cues.uncertainty_backward]
        self._kinds: dict[str, list[tuple[str, bool]]] = {}
        for w, kind, fwd in table:
            self._kinds.setdefault(w.lower(), []).append((kind, fwd))
        self._re = word_regex([w for w, _, _ in table], lang)
        self._breakers = word_regex(cues.breakers, lang)

    def cues(self, text: str, mentions: list[tuple[int, int]]) -> list[Cue]:
        """Every cue outside the mention spans (a word that is both forward and backward gives two cues)."""
        out = []
        for m in self._re.finditer(text) if self._re else ():
            if any(s < m.end() and m.start() < e for s, e in mentions):
                continue
            for kind, fwd in self._kinds[m.group(0).lower()]:
                out.append(Cue(kind, fwd, m.start(), m.end()))
        return out

    def scan(self, text: str, mentions: list[tuple[int, int]]) -> list[tuple[str | None, str | None]]:
        """(negation cue, uncertainty cue) per mention span: the cue words that cover it, or None."""
        cues = self.cues(text, mentions)
        spans = clauses(text, self.lang)
        breaks = [m.start() for m in self._breakers.finditer(text)] if self._breakers else []
        out = []
        for s, e in mentions:
            cs, ce = containing(spans, s)
            hit: dict[str, str | None] = {"negation": None, "uncertainty": None}
            for c in cues:
                if c.forward and cs <= c.start and c.end <= s:
                    if not any(c.end <= b < s for b in breaks):
                        hit[c.kind] = hit[c.kind] or text[c.start:c.end]
                elif not c.forward and e <= c.start <= min(ce, e + self.gap) and c.start <= ce:
                    between = [(ms, me) for ms, me in mentions if e <= ms < c.start]
                    if not between:
                        hit[c.kind] = hit[c.kind] or text[c.start:c.end]
            out.append((hit["negation"], hit["uncertainty"]))
        return out
