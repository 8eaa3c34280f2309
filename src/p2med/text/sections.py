"""Write a task's output sections as one assistant text, and parse a model's answer back into sections.

Chinese answers use full-width brackets, English ones square brackets, one section per line:
``【影像所见】双肺纹理清晰。\n【影像诊断】心肺未见异常。`` / ``[Findings] Lungs are clear.\n[Impression] Normal.``
The parser is tolerant (either bracket style, either language's headers, ``：``/``:`` after a header, missing
brackets at line starts) and says which sections it could not find instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..export.schema import SECTIONS

# extra spellings a model (or a human) may use for a header
ALIASES: dict[str, tuple[str, ...]] = {
    "findings": ("影像所见", "影像表现", "影像学表现", "检查所见", "所见", "Findings", "FINDINGS"),
    "impression": ("影像诊断", "影像学诊断", "诊断意见", "检查结论", "诊断结论", "印象", "影像印象", "Impression",
                   "IMPRESSION"),
    "preliminary_diagnosis": ("初步诊断", "诊断", "Preliminary diagnosis", "Diagnosis"),
    "treatment_recommendation": ("处理意见", "建议", "Treatment recommendation", "Recommendation"),
    "treatment_plan": ("治疗方案", "治疗计划", "Treatment plan"),
    "diagnostic_basis": ("诊断依据", "诊断根据", "Diagnostic basis", "Basis"),
    "current_diagnosis": ("目前诊断", "当前诊断", "Current diagnosis"),
    "diagnosis_treatment_plan": ("诊疗计划", "诊疗方案", "Diagnostic and treatment plan", "Plan"),
}


def header(key: str, lang: str) -> str:
    zh, en = SECTIONS[key]
    return f"【{zh}】" if lang == "zh" else f"[{en}]"


def format_sections(sections: dict[str, str], keys: tuple[str, ...] | list[str], lang: str) -> str:
    """The assistant text for ``keys`` in order; every key must have text (curation drops the others)."""
    sep = "" if lang == "zh" else " "
    return "\n".join(f"{header(k, lang)}{sep}{(sections.get(k) or '').strip()}" for k in keys)


@dataclass
class Parsed:
    sections: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)     # expected sections not found (or empty)
    unexpected: list[str] = field(default_factory=list)  # headers found that the task does not have


def _names(key: str) -> list[str]:
    zh, en = SECTIONS[key]
    return sorted({zh, en, *ALIASES.get(key, ())}, key=len, reverse=True)


def parse_sections(text: str, keys: tuple[str, ...] | list[str]) -> Parsed:
    """Split ``text`` at the headers of ``keys``; text before the first header is ignored."""
    spans: list[tuple[int, int, str]] = []
    for key in keys:
        for name in _names(key):
            pattern = (r"(?:【\s*" + re.escape(name) + r"\s*】|\[\s*" + re.escape(name) + r"\s*\]|(?:^|\n)\s*"
                       + re.escape(name) + r"\s*[:：])\s*[:：]?")
            m = re.search(pattern, text, flags=re.IGNORECASE)
            if m:
                spans.append((m.start(), m.end(), key))
                break
    spans.sort()
    out = Parsed()
    for i, (start, end, key) in enumerate(spans):
        stop = spans[i + 1][0] if i + 1 < len(spans) else len(text)
        body = text[end:stop].strip()
        if body and key not in out.sections:
            out.sections[key] = body
    out.missing = [k for k in keys if k not in out.sections]
    other = re.findall(r"【([^】]{1,12})】", text)
    known = {n for k in keys for n in _names(k)}
    out.unexpected = sorted({o for o in other if o not in known})
    return out
