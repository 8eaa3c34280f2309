"""IMCS-21 pediatric online consultations -> outpatient records of the task variant ``outpatient-imcs``.

Reads every ``*.jsonl`` under the folder; each line is in one of two forms:

- raw PromptCBLUE: ``{"input": "<instruction>\\n问诊对话历史：\\n患者：…\\n医生：…\\n说明：…\\n答：",
  "target": "上述问诊对话的诊疗报告如下：\\n主诉：…\\n现病史：…\\n辅助检查：…\\n既往史：…\\n诊断：…\\n建议：…",
  "task_dataset": "IMCS-V2-MRG", "sample_id": "train-4264"}``
- parsed: ``{"id": "aug-IMCS-MRG-0", "dialogue": [{"speaker": "患者", "text": "…"}], "report": {"主诉": "…", …}}``

One record per id: when an id occurs more than once (the shared folder holds both forms of the same
dialogues), the raw line is kept (it is the original; the parsed file was derived from it) and every other
line is excluded with a reason naming the kept line. The report's 主诉/现病史/辅助检查/既往史 are the inputs,
诊断/建议 the outputs; the dialogue is kept in the ``dialogue`` column but is no input of the variant, because
the doctor's turns state the diagnosis and the advice (docs/importers.md). Knows nothing of files on disk
beyond the JSONL lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..export.schema import Variant
from .readers import Damaged, read_jsonl
from .run import ImportRun, stable_id

USES_IMAGES = False
TASK_DATASET = "IMCS-V2-MRG"
DIALOGUE_MARK = "问诊对话历史："
TARGET_PREFIX = "上述问诊对话的诊疗报告如下："
SPEAKERS = ("患者", "医生")
# report header -> export section
SECTION_OF = {"主诉": "chief_complaint", "现病史": "present_illness", "辅助检查": "auxiliary_exam",
              "既往史": "past_history", "诊断": "preliminary_diagnosis", "建议": "treatment_recommendation"}
VARIANT = Variant(
    "outpatient-imcs", "outpatient",
    inputs=("chief_complaint", "present_illness", "auxiliary_exam", "past_history"),
    outputs=("preliminary_diagnosis", "treatment_recommendation"),
    note="IMCS-21 report: 主诉/现病史/辅助检查/既往史 in, 诊断 and 建议 out. It has one 建议 where the paper has a "
         "treatment recommendation and a plan, and no 体格检查 (online consultation). The dialogue is kept in "
         "the dialogue column but is no input: the doctor's turns state the diagnosis and the advice.")
VARIANTS = (VARIANT,)
NOTES = ("IMCS-21 (Chen et al., Bioinformatics 2022) pediatric online consultations via PromptCBLUE; real "
         "dialogues with annotator-written reports. Redistribution terms unknown. See docs/importers.md.")

_HEADER_LINE = re.compile(r"^(%s)[：:](.*)$" % "|".join(SECTION_OF))
_TURN_LINE = re.compile(r"^(%s)[：:](.*)$" % "|".join(SPEAKERS))


@dataclass(frozen=True)
class Consultation:
    """One dialogue and its report, whichever form it came in."""

    id: str
    turns: tuple[tuple[str, str], ...]  # (speaker, text)
    report: tuple[tuple[str, str], ...]  # (header, text) in SECTION_OF order, empty texts left out

    @property
    def dialogue(self) -> str:
        return "\n".join(f"{speaker}：{text}" for speaker, text in self.turns)


def _report(sections: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((h, sections[h].strip()) for h in SECTION_OF if (sections.get(h) or "").strip())


def parse_target(target: str) -> dict[str, str]:
    """``主诉：…\\n现病史：…`` -> ``{"主诉": "…", …}``; a line without a header continues the section before it."""
    text = target.strip()
    if text.startswith(TARGET_PREFIX):
        text = text[len(TARGET_PREFIX):]
    sections: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        match = _HEADER_LINE.match(line.strip())
        if match:
            current = match.group(1)
            sections[current] = match.group(2).strip()
        elif current is not None and line.strip():
            sections[current] += "\n" + line.strip()
    return sections


def parse_dialogue(prompt: str) -> tuple[tuple[str, str], ...] | None:
    """The turns after ``问诊对话历史：`` up to ``说明：``; None when the prompt has no dialogue marker."""
    if DIALOGUE_MARK not in prompt:
        return None
    body = prompt.split(DIALOGUE_MARK, 1)[1]
    if "\n说明：" in body:
        body = body.rsplit("\n说明：", 1)[0]
    turns: list[list[str]] = []
    for line in body.splitlines():
        match = _TURN_LINE.match(line.strip())
        if match:
            turns.append([match.group(1), match.group(2).strip()])
        elif turns and line.strip() and line.strip() != "答：":
            turns[-1][1] += "\n" + line.strip()
    return tuple((s, t) for s, t in turns)


def parse_line(obj: dict[str, Any]) -> tuple[str, Consultation] | Damaged:
    """``(form, consultation)`` for a raw or parsed line, or why the line is not imported."""
    if "input" in obj:
        dataset = obj.get("task_dataset")
        if dataset is not None and dataset != TASK_DATASET:
            return Damaged("other-task", f"task_dataset is {dataset!r}, not {TASK_DATASET}")
        prompt, target = obj.get("input"), obj.get("target")
        turns = parse_dialogue(prompt) if isinstance(prompt, str) else None
        if turns is None:
            return Damaged("unknown-format", f"the input has no {DIALOGUE_MARK} dialogue")
        report = _report(parse_target(target)) if isinstance(target, str) else ()
        cid = str(obj.get("sample_id") or obj.get("id") or stable_id("h", prompt))
        return "raw", Consultation(cid, turns, report)
    if "dialogue" in obj and "report" in obj:
        dialogue, report = obj["dialogue"], obj["report"]
        if not isinstance(dialogue, list) or not isinstance(report, dict) or not all(
                isinstance(t, dict) and isinstance(t.get("text"), str) for t in dialogue):
            return Damaged("unknown-format", "dialogue must be a list of {speaker, text} and report an object")
        turns = tuple((str(t.get("speaker") or ""), t["text"].strip()) for t in dialogue)
        cid = str(obj.get("id") or stable_id("h", "\n".join(t for _, t in turns)))
        return "parsed", Consultation(cid, turns, _report({k: str(v) for k, v in report.items() if v}))
    return Damaged("unknown-format", "expected PromptCBLUE {input, target} or parsed {id, dialogue, report}")


def convert(run: ImportRun) -> None:
    candidates: dict[str, list[tuple[str, str, Consultation]]] = {}
    files = [rel for rel in run.files() if rel.endswith(".jsonl")]
    for rel in files:
        run.mark_read(rel)
        for where, obj in read_jsonl(run.src / rel, rel):
            if isinstance(obj, Damaged):
                run.quarantined(where, obj.code, obj.text)
                continue
            parsed = parse_line(obj)
            if isinstance(parsed, Damaged):
                run.excluded(where, parsed.code, parsed.text)
                continue
            form, consultation = parsed
            if not consultation.report:
                run.excluded(where, "no-report", "the report is empty (an inputs-only test line?)")
                continue
            candidates.setdefault(consultation.id, []).append((where, form, consultation))
    for cid, lines in candidates.items():
        kept_where, _, kept = next((line for line in lines if line[1] == "raw"), lines[0])
        record_id = patient_id = f"imcs-{cid}"
        visit_id = f"{patient_id}-v"
        run.patient(patient_id)
        run.visit({"visit_id": visit_id, "patient_id": patient_id, "kind": "outpatient"})
        run.record({"record_id": record_id, "patient_id": patient_id, "visit_id": visit_id, "task": "outpatient",
                    "variant": VARIANT.name, "lang": "zh", "dialogue": kept.dialogue or None,
                    **{SECTION_OF[h]: text for h, text in kept.report}})
        run.used(kept_where, record_id=record_id)
        for where, _, other in lines:
            if where == kept_where:
                continue
            same = other == kept
            run.excluded(where, "duplicate-id",
                         f"id {cid} is imported from {kept_where} ("
                         + ("the same dialogue and report in the other form)" if same else
                            "this line's dialogue or report differs; the kept line wins)"),
                         quiet=same, record_id=record_id)
