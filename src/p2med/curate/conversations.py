"""Items -> conversations in the dataset format (docs/dataset-format.md).

Multi-round conversations (SPEC section 4): every exam of one modality in one visit, in time order, is one
conversation whose turns carry their own images; a record is a one-turn conversation. With ``mrc`` off every
exam is its own conversation (the paper's "without MRC" ablation).
Example: ``to_sample(group, prompts)`` -> ``{"sample_id": "xray_report/V1/2", "turns": [...], ...}``.
"""

from __future__ import annotations

from collections import defaultdict

from ..text.sections import format_sections
from .items import Item, render_prompt
from .prompts import Prompts

IMAGE_FIELDS = ("exam_id", "role", "array", "sha256", "shape", "true_slices")


def group_exams(items: list[Item], mrc: bool) -> list[list[Item]]:
    """Exam items grouped per (patient, visit, modality) in time order; deterministic order of groups."""
    groups: dict[tuple, list[Item]] = defaultdict(list)
    for it in items:
        if not it.modality:
            continue
        key = (it.patient_id, it.visit_id, it.modality) if mrc and it.visit_id else (it.patient_id, it.id, it.modality)
        groups[key].append(it)
    out = [sorted(g, key=lambda i: (i.time or "", i.id)) for g in groups.values()]
    return sorted(out, key=lambda g: (g[0].task, g[0].patient_id, g[0].visit_id or "", g[0].time or "", g[0].id))


def to_sample(turn_items: list[Item], prompts: Prompts) -> dict:
    """One conversation sample; its id names the task, the visit (or item) and the number of turns."""
    first, last = turn_items[0], turn_items[-1]
    images: list[dict] = []
    turns = []
    for it in turn_items:
        idx = []
        for img in it.images:
            idx.append(len(images))
            images.append({"exam_id": it.id, **{k: img.get(k) for k in IMAGE_FIELDS if k != "exam_id"}})
        turns.append({"source_id": it.id, "images": idx, "human": render_prompt(it, prompts),
                      "assistant": format_sections(it.targets, it.output_keys, it.lang),
                      "target": {k: it.targets[k] for k in it.output_keys}})
    anchor = last.visit_id if (len(turn_items) > 1 and last.visit_id) else last.id
    return {
        "sample_id": f"{last.task}/{anchor}/{len(turn_items)}" if len(turn_items) > 1 else f"{last.task}/{last.id}",
        "task": last.task, "variant": last.variant, "lang": last.lang, "patient_id": last.patient_id,
        "visit_id": last.visit_id, "modality": last.modality, "categories": list(last.categories),
        "output_keys": list(last.output_keys), "images": images, "turns": turns,
        "meta": {"age_days": last.age_days, "sex": last.sex, "time": last.time, "visit_kind": last.visit_kind,
                 "vendor": last.vendor, "tokens": sum(i.tokens for i in turn_items), "first_turn_id": first.id},
    }
