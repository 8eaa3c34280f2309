"""Where in the chest: side and level (X-ray zone 上野/中野/下野 or CT lobe 上叶/中叶/下叶) from report text.

A location expression names a side and any number of levels: 右肺下野, 右下肺野, 双肺上叶及下叶背段,
左肺上叶舌段, 右侧 (side only), 两下肺; English "right lower lobe", "bilateral", "left base". 双/两/bilateral
expand to both sides. Segments (舌段, 背段, 后基底段) are absorbed into their lobe. Knows nothing about
what lies at the location (``findings``) or what disease it is (``categories``).
Example: ``locations("双肺上叶及右肺下叶背段", "zh")`` -> two ``Loc`` whose sites are
``[("left","upper"), ("right","upper")]`` and ``[("right","lower")]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SIDE_ZH = {"左": ("left",), "右": ("right",), "双": ("left", "right"), "两": ("left", "right")}
LEVEL_ZH = {"上": "upper", "中": "middle", "下": "lower"}
KIND_ZH = {"叶": "lobe", "肺野": "zone", "野": "zone", "肺": None}
SEGMENT = r"(?:[上下]?舌段|背段|[前后内外]?基底段|尖后段|尖段|[前后]段|[内外]侧段)"
LEVEL = rf"[上中下](?:[、及和与/][上中下])*(?:叶|肺野|野|肺){SEGMENT}?"
LOC_ZH = re.compile(rf"(?P<side>[左右双两])(?P<mid>侧|肺)?肺?(?P<levels>{LEVEL}(?:[、及和与/]?{LEVEL})*)?")
LEVEL_ONE = re.compile(r"(?P<chars>[上中下](?:[、及和与/][上中下])*)(?P<kind>叶|肺野|野|肺)")

SIDE_EN = {"right": ("right",), "left": ("left",), "bilateral": ("left", "right"), "both": ("left", "right"),
           "bibasilar": ("left", "right")}
LEVEL_EN = {"upper": "upper", "middle": "middle", "mid": "middle", "lower": "lower", "base": "lower",
            "bases": "lower", "basilar": "lower", "bibasilar": "lower", "apical": "upper", "apex": "upper"}
LOC_EN = re.compile(
    r"\b(?P<side>right|left|bilateral|both|bibasilar)\b(?:\s+(?P<levels>(?:upper|middle|mid|lower|base|bases|basilar"
    r"|apical|apex)(?:\s*(?:and|/|,)\s*(?:upper|middle|mid|lower))*))?(?:\s+(?P<kind>lobes?|zones?|lungs?"
    r"|hemithorax|pleural))?", re.IGNORECASE)


@dataclass(frozen=True)
class Loc:
    """One location expression: the sides and levels it names (levels empty = side only)."""

    start: int
    end: int
    sides: tuple[str, ...]
    levels: tuple[str, ...]
    kind: str | None      # lobe | zone | None (unknown, e.g. 右下肺)

    def sites(self) -> list[tuple[str, str | None]]:
        levels = self.levels or (None,)
        return [(s, lv) for s in self.sides for lv in levels]


def _zh(text: str) -> list[Loc]:
    out = []
    for m in LOC_ZH.finditer(text):
        if not m.group("mid") and not m.group("levels"):
            continue  # a bare 左/右/两 is not a location (两周, 左右)
        levels: list[str] = []
        kinds = set()
        for lm in LEVEL_ONE.finditer(m.group("levels") or ""):
            for ch in re.findall("[上中下]", lm.group("chars")):
                if LEVEL_ZH[ch] not in levels:
                    levels.append(LEVEL_ZH[ch])
            kinds.add(KIND_ZH[lm.group("kind")])
        kind = kinds.pop() if len(kinds) == 1 else None
        out.append(Loc(m.start(), m.end(), SIDE_ZH[m.group("side")], tuple(levels), kind))
    return out


def _en(text: str) -> list[Loc]:
    out = []
    for m in LOC_EN.finditer(text):
        side = m.group("side").lower()
        words = re.findall(r"[a-z]+", (m.group("levels") or "").lower())
        levels = [LEVEL_EN[w] for w in words if w in LEVEL_EN]
        if side == "bibasilar":
            levels = ["lower"]
        kind_word = (m.group("kind") or "").lower()
        kind = "lobe" if kind_word.startswith("lobe") else "zone" if kind_word.startswith("zone") else None
        out.append(Loc(m.start(), m.end(), SIDE_EN[side], tuple(dict.fromkeys(levels)), kind))
    return out


def locations(text: str, lang: str) -> list[Loc]:
    """Every location expression in ``text``, in order."""
    return _zh(text) if lang == "zh" else _en(text)
