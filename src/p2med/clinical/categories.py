"""The disease-category normaliser for impressions and diagnoses (SPEC section 3), Chinese first, English too.

A YAML dictionary (``configs/clinical/categories.yaml``: canonical category -> synonyms and patterns) is matched
leftmost-longest, so 毛细支气管炎 is never read as 支气管炎. Each mention gets attributes from the words in front
of it or in brackets after it (side and lobe/zone: 右下肺炎, 肺炎(右下); qualifiers: 急性, 重症; the hedge word:
可能 待排 考虑 ?), and negation and uncertainty flags from ``cues`` (未见 无 排除 否认; 可能 待排 考虑 ? 不除外). ``categories`` is multi-label in
order of first mention, negated excluded, uncertain included; a finding category (斑片影) counts only when no
disease is named, 正常 only when nothing else is. Fragments it could not map are kept and counted.
Example: ``CategoryNormaliser.from_yaml().normalise("1.右下肺炎；2.哮喘待排", "zh").categories``
-> ``["肺炎", "支气管哮喘"]`` (the second uncertain).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal

from ..config import check, load_config
from .anatomy import SIDE_ZH, locations
from .cues import CLAUSE_SEP, DEFAULT_CUES, CueScanner, Cues, clauses, containing, spans_between, word_regex

DEFAULT_PATH = Path(__file__).resolve().parents[3] / "configs" / "clinical" / "categories.yaml"
KINDS = ("disease", "symptom", "finding", "normal")
SHORT_SITE = re.compile(r"([左右双两])侧?([上中下])?$")  # 右下 in 右下肺炎: too short for ``anatomy``
LEVELS = {"上": "upper", "中": "middle", "下": "lower"}


@dataclass
class Category:
    name: str                                                 # canonical category (Chinese)
    en: str = ""                                              # English name
    kind: Literal["disease", "symptom", "finding", "normal"] = "disease"  # how it counts (module docstring)
    zh: list[str] = field(default_factory=list)               # Chinese synonyms, matched literally
    en_terms: list[str] = field(default_factory=list)         # English synonyms, whole words, any case
    patterns: list[str] = field(default_factory=list)         # extra regular expressions (either language)

    def __post_init__(self) -> None:
        check(bool(self.name.strip()), "categories[].name", "must not be empty")
        check(bool(self.zh or self.en_terms or self.patterns), f"categories[{self.name}]",
              "needs at least one synonym or pattern")
        for p in self.patterns:
            try:
                re.compile(p)
            except re.error as exc:
                check(False, f"categories[{self.name}].patterns", f"{p!r} is not a regular expression ({exc})")


@dataclass
class CategoryConfig:
    categories: list[Category] = field(default_factory=list)  # the dictionary, in any order
    cues: dict[str, Cues] = field(default_factory=lambda: dict(DEFAULT_CUES))  # negation/uncertainty words per lang
    qualifiers: dict[str, dict[str, str]] = field(default_factory=dict)  # lang -> word -> "attribute=value"
    ignore: dict[str, list[str]] = field(default_factory=dict)  # lang -> regexes of fragments that are no diagnosis

    def __post_init__(self) -> None:
        names = [c.name for c in self.categories]
        dup = sorted({n for n in names if names.count(n) > 1})
        check(not dup, "categories", f"category names must be unique, repeated: {dup}")
        owner: dict[str, str] = {}
        for c in self.categories:
            for term in [*c.zh, *(t.lower() for t in c.en_terms)]:
                check(owner.setdefault(term, c.name) == c.name, f"categories[{c.name}]",
                      f"synonym {term!r} is already a synonym of {owner.get(term)}")
        for lang, table in self.qualifiers.items():
            for word, attr in table.items():
                check("=" in attr, f"qualifiers.{lang}.{word}", f"must look like attribute=value, got {attr!r}")
        for lang in [*self.qualifiers, *self.ignore]:
            check(lang in ("zh", "en"), "qualifiers/ignore", f"language must be zh or en, got {lang!r}")


@dataclass(frozen=True)
class Mention:
    category: str
    kind: str
    attributes: dict
    negated: bool
    uncertain: bool
    span: tuple[int, int]
    text: str

    def to_json(self) -> dict:
        return {"category": self.category, "kind": self.kind, "attributes": self.attributes,
                "negated": self.negated, "uncertain": self.uncertain, "span": list(self.span), "text": self.text}


@dataclass
class Normalised:
    text: str
    lang: str
    mentions: list[Mention]
    unmapped: list[str]          # fragments holding no category (after change words, advice etc. are ignored)

    @property
    def categories(self) -> list[str]:
        """Positive categories in order of first mention (uncertain included, negated excluded)."""
        pos = [m for m in self.mentions if not m.negated]
        kinds = {m.kind for m in pos}
        if kinds & {"disease", "symptom"}:
            pos = [m for m in pos if m.kind in ("disease", "symptom")]
        elif "finding" in kinds:
            pos = [m for m in pos if m.kind == "finding"]
        return list(dict.fromkeys(m.category for m in pos))

    @property
    def uncertain(self) -> list[str]:
        """Categories every positive mention of which is hedged."""
        cats = self.categories
        sure = {m.category for m in self.mentions if not m.negated and not m.uncertain}
        return [c for c in cats if c not in sure]

    def to_json(self) -> dict:
        return {"categories": self.categories, "uncertain": self.uncertain,
                "mentions": [m.to_json() for m in self.mentions], "unmapped": self.unmapped}


class CategoryNormaliser:
    """Maps impression / diagnosis text to categories; build it once, call ``normalise`` per text."""

    def __init__(self, config: CategoryConfig) -> None:
        self.config = config
        self._kind = {c.name: c.kind for c in config.categories}
        self._literal: dict[str, dict[str, str]] = {"zh": {}, "en": {}}
        for c in config.categories:
            self._literal["zh"].update({t: c.name for t in c.zh})
            self._literal["en"].update({t.lower(): c.name for t in c.en_terms})
        self._literal_re = {lang: word_regex(list(table), lang) for lang, table in self._literal.items()}
        self._patterns = [(re.compile(p), c.name) for c in config.categories for p in c.patterns]
        self._scanners = {lang: CueScanner(config.cues.get(lang, DEFAULT_CUES[lang]), lang) for lang in ("zh", "en")}
        self._qual = {lang: (word_regex(list(t), lang), {k.lower(): v for k, v in t.items()})
                      for lang, t in config.qualifiers.items()}
        self._ignore = {lang: [re.compile(p, re.IGNORECASE) for p in pats] for lang, pats in config.ignore.items()}
        self._cue_words = {lang: word_regex([w for name in ("negation_forward", "negation_backward",
                                                             "uncertainty_forward", "uncertainty_backward")
                                             for w in getattr(config.cues.get(lang, DEFAULT_CUES[lang]), name)], lang)
                           for lang in ("zh", "en")}

    @classmethod
    def from_yaml(cls, path: str | Path | None = None) -> "CategoryNormaliser":
        """The shipped dictionary (``configs/clinical/categories.yaml``) or a hospital's own file."""
        return cls(load_config(CategoryConfig, path or DEFAULT_PATH))

    def _matches(self, text: str, lang: str) -> list[tuple[int, int, str]]:
        cands = []
        rx = self._literal_re.get(lang)
        if rx is not None:
            for m in rx.finditer(text):
                term = m.group(0) if lang == "zh" else m.group(0).lower()
                cands.append((m.start(), m.end(), self._literal[lang][term]))
        for rx, name in self._patterns:
            cands += [(m.start(), m.end(), name) for m in rx.finditer(text) if m.end() > m.start()]
        chosen: list[tuple[int, int, str]] = []
        for s, e, name in sorted(cands, key=lambda t: (t[0], t[0] - t[1])):
            if all(e <= cs or s >= ce for cs, ce, _ in chosen):
                chosen.append((s, e, name))
        return chosen

    def _attributes(self, text: str, lang: str, start: int, end: int, lo: int, hi: int) -> dict:
        """Attributes from ``text[lo:start]`` (words before the mention in its clause) and a bracket after it."""
        before = text[lo:start]
        after = re.match(r"\s*[（(]([^）)]{1,12})[）)]", text[end:hi])
        parts = [before] + ([after.group(1)] if after else [])
        attrs: dict = {}
        sides: list[str] = []
        levels: list[str] = []
        for part in parts:
            for loc in locations(part, lang):
                sides += [s for s in loc.sides if s not in sides]
                levels += [lv for lv in loc.levels if lv not in levels]
                if loc.kind:
                    attrs["site_kind"] = loc.kind
            m = SHORT_SITE.search(part) if lang == "zh" else None
            if m and not sides:
                sides = list(SIDE_ZH[m.group(1)])
                levels = [LEVELS[m.group(2)]] if m.group(2) else []
            rx, table = self._qual.get(lang, (None, {}))
            for q in rx.finditer(part) if rx else ():
                key, value = table[q.group(0).lower()].split("=", 1)
                attrs[key] = value
        if sides:
            attrs["side"] = "both" if len(sides) == 2 else sides[0]
        if levels:
            attrs["levels"] = levels
        return attrs

    def normalise(self, text: str, lang: str = "zh") -> Normalised:
        text = text or ""
        found = self._matches(text, lang)
        spans = [(s, e) for s, e, _ in found]
        flags = self._scanners[lang].scan(text, spans)
        cl = clauses(text, lang)
        mentions = []
        for i, (s, e, name) in enumerate(found):
            cs, ce = containing(cl, s)
            lo = max([cs] + [pe for ps, pe in spans if pe <= s])
            hi = min([ce + 1] + [ps for ps, pe in spans if ps >= e])
            attrs = self._attributes(text, lang, s, e, lo, hi)
            neg_cue, unc_cue = flags[i]
            if unc_cue:
                attrs["hedge"] = unc_cue   # 待排, 可能, 考虑, ?: kept, so "肺炎待排" and "考虑肺炎" stay distinguishable
            mentions.append(Mention(name, self._kind[name], attrs, neg_cue is not None, unc_cue is not None, (s, e),
                                    text[s:e]))
        return Normalised(text, lang, mentions, self._unmapped(text, lang, spans))

    def _unmapped(self, text: str, lang: str, spans: list[tuple[int, int]]) -> list[str]:
        out = []
        for s, e in spans_between(text, CLAUSE_SEP[lang] + r"|[、/]"):
            if any(ms < e and s < me for ms, me in spans):
                continue
            frag = text[s:e].strip()
            rest = frag
            for loc in reversed(locations(rest, lang)):
                rest = rest[:loc.start] + rest[loc.end:]
            for rx in (self._cue_words[lang], self._qual.get(lang, (None,))[0]):
                rest = rx.sub("", rest) if rx else rest
            rest = re.sub(r"[\d\s\W_]+", "", rest)
            if len(rest) < 2 or any(p.fullmatch(rest) or p.fullmatch(frag) for p in self._ignore.get(lang, ())):
                continue
            out.append(frag)
        return out

    def report(self, texts: Iterable[str | tuple[str, str]]) -> dict:
        """What the dictionary covers on ``texts`` (strings, or (text, lang) pairs): category counts and the
        unmapped fragments with their counts, most frequent first."""
        n = mapped = 0
        cats: Counter = Counter()
        hedged: Counter = Counter()
        negated: Counter = Counter()
        unmapped: Counter = Counter()
        for item in texts:
            text, lang = (item, "zh") if isinstance(item, str) else item
            res = self.normalise(text, lang)
            n += 1
            mapped += bool(res.categories)
            cats.update(res.categories)
            hedged.update(res.uncertain)
            negated.update({m.category for m in res.mentions if m.negated})
            unmapped.update(res.unmapped)

        def ordered(c: Counter) -> dict:
            return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))

        return {"texts": n, "mapped_texts": mapped, "unmapped_texts": n - mapped,
                "mapped_share": round(mapped / n, 6) if n else None, "categories": ordered(cats),
                "uncertain": ordered(hedged), "negated": ordered(negated),
                "unmapped": [{"fragment": f, "count": c} for f, c in ordered(unmapped).items()]}
