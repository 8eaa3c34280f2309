"""Chinese radiology reports (findings + impression) written from the planted findings.

A follow-up exam compares with the prior one of the same modality in the visit: each finding is new,
improved, progressed or unchanged, and a prior finding that is gone is resolved. The wording keeps one
vocabulary for pattern (斑片影 实变 磨玻璃影 胸腔积液), side and zone/lobe, so the evaluation extractor can read it.
Example impression: ``右肺下野斑片影，较前吸收好转``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .findings import CT_LOBE_ZH, SIDE_ZH, XR_ZONE_ZH, Finding

CHANGES = ("new", "improved", "progressed", "unchanged", "resolved")
CHANGE_FINDINGS_ZH = {"new": "为新出现病灶", "improved": "较前范围缩小、密度减低", "progressed": "较前范围增大、密度增高",
                      "unchanged": "与前片大致相仿", "resolved": "已基本吸收"}
CHANGE_IMPRESSION_ZH = {"new": "新发", "improved": "较前吸收好转", "progressed": "较前进展", "unchanged": "大致同前",
                        "resolved": "已基本吸收"}
IMPRESSION_HINT = {"patchy": "考虑支气管肺炎", "consolidation": "考虑大叶性肺炎", "ggo": "考虑病毒性肺炎"}
SHORT_ZH = {"patchy": "斑片影", "consolidation": "实变", "ggo": "磨玻璃影", "effusion": "胸腔积液"}

XR_SENTENCES = {
    "patchy": ("{loc}可见斑片状模糊影，边缘不清", "{loc}见小斑片状密度增高影，边界模糊", "{loc}纹理增多、模糊，可见斑片影"),
    "consolidation": ("{loc}见大片状致密影，密度较均匀，其内可见支气管充气征", "{loc}可见片状实变影，边缘较清"),
    "ggo": ("{loc}见淡薄磨玻璃样密度增高影", "{loc}透亮度减低，呈磨玻璃样改变"),
    "effusion": ("{s}侧肋膈角变钝，{s}下肺野见外高内低弧形致密影", "{s}侧胸腔见弧形液性密度影，{s}侧肋膈角消失"),
}
CT_SENTENCES = {
    "patchy": ("{loc}见斑片状密度增高影，边界模糊", "{loc}可见多发斑片状模糊影"),
    "consolidation": ("{loc}见大片状实变影，其内可见支气管充气征", "{loc}见片状致密实变影，边缘模糊"),
    "ggo": ("{loc}见片状磨玻璃密度影，其内血管影可见", "{loc}见淡薄磨玻璃影"),
    "effusion": ("{s}侧胸腔内见弧形液体密度影，邻近肺组织受压", "{s}侧胸腔可见新月形液性密度影"),
}


@dataclass(frozen=True)
class Change:
    """A finding of this exam or of its prior, with how it changed (``prior`` is None for a new finding)."""

    finding: Finding | None
    prior: Finding | None
    state: str


def location_zh(f: Finding, modality: str) -> str:
    s = SIDE_ZH[f.side]
    if f.pattern == "effusion":
        return f"{s}侧胸腔"
    return f"{s}肺{XR_ZONE_ZH[f.zone]}" if modality == "XR" else CT_LOBE_ZH[(f.side, f.zone)]


def name_zh(f: Finding, modality: str) -> str:
    """What the impression calls a finding: 右肺下野斑片影, 左肺上叶实变, 右侧胸腔积液."""
    if f.pattern == "effusion":
        return f"{SIDE_ZH[f.side]}侧胸腔积液"
    return location_zh(f, modality) + SHORT_ZH[f.pattern]


def _sentence(rng: np.random.Generator, f: Finding, modality: str) -> str:
    table = XR_SENTENCES if modality == "XR" else CT_SENTENCES
    options = table[f.pattern]
    return options[int(rng.integers(len(options)))].format(loc=location_zh(f, modality), s=SIDE_ZH[f.side])


def write_report(rng: np.random.Generator, modality: str, findings: list[Finding],
                 changes: list[Change] | None = None, prior_date: str | None = None,
                 contrast: bool = False, views: int = 1) -> tuple[str, str]:
    """(findings text, impression text) of one exam. ``changes`` given means a follow-up with a prior."""
    lesion = []
    if changes is not None:
        for ch in changes:
            f = ch.finding or ch.prior
            if ch.state == "resolved":
                lesion.append(f"原{name_zh(f, modality)}{CHANGE_FINDINGS_ZH['resolved']}")
            else:
                lesion.append(f"{_sentence(rng, f, modality)}，{CHANGE_FINDINGS_ZH[ch.state]}")
    else:
        lesion = [_sentence(rng, f, modality) for f in findings]
    effusion_sides = {f.side for f in findings if f.pattern == "effusion"}
    compare = f"与{prior_date}片比较：" if changes is not None and prior_date else ""
    if modality == "XR":
        parts = ["胸廓对称，气管居中，纵隔无增宽"]
        lungs = "；".join(lesion) if lesion else ("双肺纹理清晰，双肺野未见明显实质性病变" if rng.random() < 0.5
                                                  else "双肺纹理稍增多，未见明显斑片影及实变影")
        parts.append(compare + lungs)
        parts.append("心影大小、形态未见异常" if rng.random() < 0.7 else "心影不大")
        if not effusion_sides:
            parts.append("双膈面光整，双侧肋膈角锐利")
        if views > 1:
            parts.insert(1, "侧位片所见同正位")
    else:
        parts = ["胸廓对称，气管居中，气管及主支气管通畅"]
        lungs = "；".join(l for l in lesion) if lesion else "双肺纹理清晰，双肺实质内未见明显异常密度影"
        parts.append(compare + lungs)
        parts.append("纵隔内未见明显肿大淋巴结，心影不大")
        if not effusion_sides:
            parts.append("双侧胸腔未见积液")
        if contrast:
            enh = [f for f in findings if f.pattern == "consolidation"]
            parts.append("增强扫描" + ("实变区可见轻度强化，" if enh else "") + "纵隔大血管强化未见异常")
    findings_text = "。".join(parts) + "。"
    impression = _impression(rng, modality, findings, changes, contrast)
    return findings_text, impression


def _impression(rng, modality, findings, changes, contrast) -> str:
    items: list[str] = []
    if changes is not None:
        for ch in changes:
            f = ch.finding or ch.prior
            if ch.state == "new":
                items.append(f"新发{name_zh(f, modality)}")
            elif ch.state == "resolved":
                items.append(f"原{name_zh(f, modality)}{CHANGE_IMPRESSION_ZH['resolved']}")
            else:
                items.append(f"{name_zh(f, modality)}，{CHANGE_IMPRESSION_ZH[ch.state]}")
    else:
        for f in findings:
            hint = IMPRESSION_HINT.get(f.pattern)
            items.append(name_zh(f, modality) + (f"，{hint}" if hint else ""))
    if not items or (changes is not None and all(c.state == "resolved" for c in changes) and not findings):
        normal = ("心肺膈未见明显异常" if modality == "XR" else
                  ("胸部CT平扫+增强未见明显异常" if contrast else "胸部CT平扫未见明显异常"))
        if not items:
            return normal + "。"
        items.append("余心肺未见明显异常" if modality == "XR" else "余胸部CT未见明显异常")
    if len(items) == 1:
        return items[0] + "。"
    return "".join(f"{i}.{t}。" for i, t in enumerate(items, 1))
