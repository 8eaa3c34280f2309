"""Near-duplicate and hard-negative outpatient records with a controlled Jaccard similarity.

The similarity is the one SPEC section 2 deduplicates on: character 5-grams of all sections concatenated,
after NFKC and with whitespace removed. A duplicate is edited until its Jaccard with the original falls in
the requested band (0.85-1.0 for duplicates, 0.6-0.85 for hard negatives); J = 1.0 copies differ only in
what the normalisation removes (spaces, full-width digits). Example: ``mutate(rng, sections, (0.85, 0.9))``.
"""

from __future__ import annotations

import unicodedata

import numpy as np

FILLERS = ("精神反应可", "饮食欠佳", "大小便正常", "睡眠尚可", "无抽搐", "无皮疹", "无腹泻", "家长诉夜间咳嗽较多",
           "已口服药物治疗", "近期无外出史", "否认异物吸入史", "接种疫苗按计划完成")
SUBST = "的了一是在有和出现伴无可见未及呼吸音粗咳嗽发热痰喘天次日"


def normalise(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def shingles(text: str, n: int = 5) -> set[str]:
    t = normalise(text)
    return {t[i:i + n] for i in range(len(t) - n + 1)}


def record_text(sections: dict[str, str | None], keys: tuple[str, ...]) -> str:
    return "".join(sections.get(k) or "" for k in keys)


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _invisible(rng: np.random.Generator, text: str) -> str:
    """Edits NFKC + whitespace removal undo: spaces, full-width digits and letters."""
    out = []
    for ch in text:
        if ch.isascii() and ch.isalnum() and rng.random() < 0.5:
            ch = chr(ord(ch) + 0xFEE0)
        out.append(ch)
        if rng.random() < 0.02:
            out.append(" ")
    return "".join(out)


def _edit(rng: np.random.Generator, text: str) -> str:
    kind = rng.random()
    clauses = [c for c in text.replace("。", "，").split("，") if c]
    if kind < 0.3 and any(c.isdigit() for c in text):
        idx = [i for i, c in enumerate(text) if c.isdigit()]
        i = idx[int(rng.integers(len(idx)))]
        return text[:i] + str((int(text[i]) + int(rng.integers(1, 9))) % 10) + text[i + 1:]
    if kind < 0.5 and len(clauses) > 3:
        victim = clauses[int(rng.integers(len(clauses)))]
        return text.replace(victim + "，", "", 1) if victim + "，" in text else text.replace(victim, "", 1)
    if kind < 0.75:
        pos = [i + 1 for i, c in enumerate(text) if c in "，。"] or [len(text)]
        i = pos[int(rng.integers(len(pos)))]
        return text[:i] + FILLERS[int(rng.integers(len(FILLERS)))] + "，" + text[i:]
    i = int(rng.integers(len(text)))
    return text[:i] + SUBST[int(rng.integers(len(SUBST)))] + text[i + 1:]


def mutate(rng: np.random.Generator, sections: dict[str, str | None], keys: tuple[str, ...],
           band: tuple[float, float], tries: int = 20) -> tuple[dict[str, str | None], float] | None:
    """A copy of ``sections`` whose Jaccard with the original lies in ``band`` (inclusive), or None."""
    lo, hi = band
    base = shingles(record_text(sections, keys))
    if len(base) < 20:
        return None
    editable = [k for k in keys if sections.get(k)]
    for _ in range(tries):
        target = float(rng.uniform(lo, hi))
        copy = dict(sections)
        if hi >= 1.0 and target > 0.995:
            for k in editable:
                copy[k] = _invisible(rng, copy[k] or "")
            j = jaccard(base, shingles(record_text(copy, keys)))
            if j >= lo:
                return copy, j
            continue
        j = 1.0
        for _step in range(400):
            k = editable[int(rng.integers(len(editable)))]
            copy[k] = _edit(rng, copy[k] or "")
            j = jaccard(base, shingles(record_text(copy, keys)))
            if j <= target:
                break
        if lo <= j <= hi and all(copy[k] for k in editable):
            return copy, j
    return None
