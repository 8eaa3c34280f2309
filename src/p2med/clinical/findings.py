"""The radiology finding extractor: pattern x side x zone/lobe, negation, uncertainty and change vs a prior.

Patterns (Chinese first, English too): patchy 斑片影, consolidation 实变, ggo 磨玻璃影, effusion 胸腔积液,
pneumothorax 气胸, atelectasis 肺不张, nodule 结节, linear 条索/条片影, lymphadenopathy 肿大淋巴结. A modifier
that belongs to another head is absorbed (斑片状实变影 is consolidation, 片状磨玻璃影 is ggo). Locations come from
``anatomy``: a pattern takes the location group before it in its clause, or the last one of its sentence
(右肺下野纹理增多，可见斑片影); 双肺 gives one finding per side. A change phrase (新发, 较前吸收好转, 较前进展,
大致同前, 已基本吸收) applies to the pattern group before it in the sentence, or the one after it when it opens
the sentence. Effusion and pneumothorax carry no level. Knows nothing about scoring (``scoring``).
Example: ``extract_findings("右肺下野斑片影，较前吸收好转")`` -> one ``FindingMention("patchy", "right",
"lower", "zone", negated=False, uncertain=False, change="improved", ...)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .anatomy import Loc, locations
from .cues import DEFAULT_CUES, CueScanner, Cues, clauses, containing, sentences

PATTERNS = ("patchy", "consolidation", "ggo", "effusion", "pneumothorax", "atelectasis", "nodule", "linear",
            "lymphadenopathy")
NO_LEVEL = ("effusion", "pneumothorax")  # basal / pleural: the side is all a report gives
CHANGES = ("new", "improved", "progressed", "unchanged", "resolved")

_MOD = r"(?:斑片状|小斑片状|大片状|小片状|片状|斑点状|淡薄|局限性|多发)?"
PATTERN_RES_ZH: dict[str, list[str]] = {  # order matters only between patterns; longest match wins per position
    "effusion": [r"胸腔(?:内)?(?:少量|中等量|大量|少许)?积液", r"(?:外高内低)?弧形(?:致密|液性密度|液体密度)影",
                 r"(?:新月形|弧形)?液(?:性|体)密度影", r"肋膈角(?:变钝|消失)", r"积液"],
    "pneumothorax": [r"液?气胸"],
    "atelectasis": [r"肺不张"],
    "consolidation": [_MOD + r"实变(?:影|灶)?", r"(?:大片状|片状)致密影"],
    "ggo": [_MOD + r"(?:磨|毛)?玻璃(?:样|密度)*(?:影|改变|结节)?"],
    "linear": [r"小?(?:条片|条索|索条|纤维条索)状?影"],
    "lymphadenopathy": [r"肿大(?:的)?淋巴结", r"淋巴结(?:影)?肿大"],
    "nodule": [r"结节(?:影|灶)?"],
    "patchy": [r"(?:小|大)?斑片状?(?:模糊|密度增高)?影", r"(?:小|大)?斑片(?=[及和、与])", r"(?:小|大)?片状?(?:模糊|密度增高)?影",
               r"斑点状?影"],
}
PATTERN_RES_EN: dict[str, list[str]] = {
    "effusion": [r"pleural effusions?", r"effusions?", r"blunting of the (?:\w+ )?costophrenic angles?"],
    "pneumothorax": [r"pneumothora(?:x|ces)"],
    "atelectasis": [r"atelecta(?:sis|tic changes?)"],
    "consolidation": [r"consolidations?", r"airspace disease"],
    "ggo": [r"ground[- ]glass(?: opacit(?:y|ies))?"],
    "linear": [r"linear (?:opacit(?:y|ies)|scarring)", r"scarring"],
    "lymphadenopathy": [r"lymphadenopathy"],
    "nodule": [r"nodules?", r"granulomas?"],
    "patchy": [r"(?:patchy |airspace |hazy )?opacit(?:y|ies)", r"infiltrates?"],
}
CHANGE_RES_ZH = {
    "resolved": r"已(?:基本|完全)?吸收|基本吸收|完全吸收|吸收消失|已消失",
    "improved": r"较前(?:明显)?(?:吸收)?好转|较前(?:范围)?(?:明显)?(?:缩小|减少|减轻|吸收)|吸收好转|密度减低",
    "progressed": r"较前(?:明显)?进展|较前(?:范围)?(?:明显)?(?:增大|增多|加重|扩大)|进展",
    "unchanged": r"大致同前|与前(?:片)?(?:大致)?相仿|较前(?:大致)?相仿|变化不大|无明显变化|未见明显变化|同前",
    "new": r"新发|新出现|新见",
}
CHANGE_RES_EN = {
    "resolved": r"\b(?:resolved|resolution)\b",
    "improved": r"\b(?:improv(?:ed|ing|ement)|decreas(?:ed|ing))\b",
    "progressed": r"\b(?:worse(?:ned|ning)?|increas(?:ed|ing)|progress(?:ed|ion))\b",
    "unchanged": r"\b(?:unchanged|stable|no (?:significant |interval )?change)\b",
    "new": r"\bnew(?:ly)?\b",
}


def _compile(table: dict[str, list[str]], flags: int = 0) -> re.Pattern:
    return re.compile("|".join(f"(?P<{name}>{'|'.join(res)})" for name, res in table.items()), flags)


HEAD_RE = {"zh": _compile(PATTERN_RES_ZH), "en": _compile(PATTERN_RES_EN, re.IGNORECASE)}
CHANGE_RE = {"zh": _compile({k: [v] for k, v in CHANGE_RES_ZH.items()}),
             "en": _compile({k: [v] for k, v in CHANGE_RES_EN.items()}, re.IGNORECASE)}


@dataclass(frozen=True)
class FindingMention:
    """One finding at one side (双肺 gives two mentions with the same span)."""

    pattern: str
    side: str | None            # left | right | None (not stated)
    level: str | None           # upper | middle | lower | None (not stated, or effusion/pneumothorax)
    site_kind: str | None       # lobe (CT) | zone (X-ray) | None
    negated: bool
    uncertain: bool
    change: str | None          # one of CHANGES, or None (no comparison stated)
    span: tuple[int, int]
    text: str

    def key(self, depth: str = "full") -> tuple:
        """Matching key: ``pattern`` -> (pattern,), ``side`` -> (pattern, side), ``full`` adds the level."""
        if depth == "pattern":
            return (self.pattern,)
        if depth == "side":
            return (self.pattern, self.side)
        return (self.pattern, self.side, self.level)

    def to_json(self) -> dict:
        return {"pattern": self.pattern, "side": self.side, "level": self.level, "site_kind": self.site_kind,
                "negated": self.negated, "uncertain": self.uncertain, "change": self.change,
                "span": list(self.span), "text": self.text}


class FindingExtractor:
    """Extracts ``FindingMention`` from a report text; ``cues`` override the default negation/uncertainty words."""

    def __init__(self, cues: dict[str, Cues] | None = None) -> None:
        cues = cues or DEFAULT_CUES
        self._scanners = {lang: CueScanner(c, lang) for lang, c in cues.items()}

    def extract(self, text: str, lang: str = "zh") -> list[FindingMention]:
        heads = [(m.start(), m.end(), m.lastgroup) for m in HEAD_RE[lang].finditer(text)]
        spans = [(s, e) for s, e, _ in heads]
        flags = self._scanners[lang].scan(text, spans)
        locs = [l for l in locations(text, lang) if not any(s < l.end and l.start < e for s, e in spans)]
        changes = [(m.start(), m.lastgroup) for m in CHANGE_RE[lang].finditer(text)
                   if not any(s < m.end() and m.start() < e for s, e in spans)]
        cl = clauses(text, lang)
        state: dict[int, str] = {}
        locs_of: dict[int, list[Loc]] = {}
        for ss, se in sentences(text, lang):
            items = sorted([(l.start, "loc", l) for l in locs if ss <= l.start < se]
                           + [(s, "head", i) for i, (s, _, _) in enumerate(heads) if ss <= s < se]
                           + [(s, "change", c) for s, c in changes if ss <= s < se], key=lambda t: t[0])
            pending: list[Loc] = []
            pending_clause = None
            after_head = False
            groups: list[list[int]] = []
            waiting: list[str] = []  # change phrases seen before any head of the sentence
            for pos, kind, obj in items:
                if kind == "loc":
                    clause = containing(cl, pos)
                    if after_head or clause != pending_clause:
                        pending = []  # a new location group: after a finding, or in a new clause
                    pending.append(obj)
                    pending_clause = clause
                    after_head = False
                elif kind == "head":
                    if not after_head:
                        groups.append([])
                    groups[-1].append(obj)
                    locs_of[obj] = list(pending)
                    after_head = True
                    if len(groups) == 1:
                        for c in waiting:
                            state.setdefault(obj, c)
                elif groups:
                    for i in groups[-1]:
                        state[i] = obj
                else:
                    waiting.append(obj)
        out = []
        for i, (s, e, pattern) in enumerate(heads):
            negated, uncertain = flags[i][0] is not None, flags[i][1] is not None
            sites = [(site, l.kind) for l in locs_of.get(i, []) for site in l.sites()] or [((None, None), None)]
            seen = set()
            for (side, level), kind in sites:
                if pattern in NO_LEVEL:
                    level, kind = None, None
                if (side, level) in seen:
                    continue
                seen.add((side, level))
                out.append(FindingMention(pattern, side, level, kind, negated, uncertain, state.get(i),
                                          (s, e), text[s:e]))
        return out


def present(mentions: list[FindingMention], depth: str = "full") -> set[tuple]:
    """Keys of the findings a report says are there now: not negated, not resolved. A mention without side
    (or level) is dropped when the same pattern is also given with one (it is a re-mention)."""
    pos = [m for m in mentions if not m.negated and m.change != "resolved"]
    keep = []
    for m in pos:
        if m.side is None and any(o.pattern == m.pattern and o.side for o in pos):
            continue
        if m.level is None and m.pattern not in NO_LEVEL and any(
                o.pattern == m.pattern and o.side == m.side and o.level for o in pos):
            continue
        keep.append(m)
    return {m.key(depth) for m in keep}


def changes(mentions: list[FindingMention]) -> set[tuple]:
    """(pattern, side, level, change) of every non-negated mention that states a change vs the prior."""
    return {m.key("full") + (m.change,) for m in mentions if m.change and not m.negated}
