"""Read an export and its ingest cache into validated training items, one per exam or record.

An item is what one conversation turn is made of: its inputs (a prompt, images), its target sections and its
categories. Records missing any output section of their task (or declared variant), exams without a report
or without images in the cache, and items over the token limit are entered in the ledger as excluded and
never become items. Example: ``load_items(Export.open(d), ImageCache(c), ctx, ledger)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..common.ledger import Ledger
from ..export.schema import EXAM_TASK, TASKS, sections_of
from ..eval.benchmark import DIAGNOSIS_KEYS
from ..export.tables import Export
from ..text.age import age_days
from ..text.sections import format_sections
from .prompts import Prompts
from .tokens import TokenCounter



@dataclass
class Item:
    source: str                 # ledger source: exams/<exam_id> or records/<record_id>
    id: str
    task: str
    variant: str | None
    lang: str
    patient_id: str
    visit_id: str | None
    time: str | None
    input_keys: tuple[str, ...]
    output_keys: tuple[str, ...]
    inputs: dict[str, str]
    targets: dict[str, str]
    modality: str | None = None
    images: list[dict] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    age_days: int | None = None
    sex: str | None = None
    visit_kind: str | None = None
    vendor: str | None = None
    tokens: int = 0

    @property
    def primary(self) -> str:
        return self.categories[0]

    def diagnosis_text(self) -> str:
        return "；".join(self.targets[k] for k in DIAGNOSIS_KEYS if self.targets.get(k))

    def dedup_text(self) -> str:
        """All input and output sections concatenated (SPEC section 2)."""
        return "".join(self.inputs.get(k, "") for k in self.input_keys) + \
            "".join(self.targets.get(k, "") for k in self.output_keys)


def _text(v: Any) -> str:
    return v.strip() if isinstance(v, str) else ""


def load_items(export: Export, cache, prompts: Prompts, counter: TokenCounter, ledger: Ledger,
               max_tokens: int) -> list[Item]:
    patients = {str(p["patient_id"]): p for p in export.load("patients")}
    visits = {str(v["visit_id"]): v for v in export.load("visits")}
    variants = export.variants
    items: list[Item] = []
    for row in export.load("exams"):
        eid = str(row["exam_id"])
        source = f"exams/{eid}"
        task = EXAM_TASK.get(row.get("modality") or "")
        variant = variants.get(row.get("variant") or "")
        _, outputs = sections_of(task, variant) if task else ((), ())
        targets = {k: _text(row.get(k)) for k in outputs}
        if task is None:
            ledger.excluded(source, "unknown_modality", f"modality {row.get('modality')!r} is not XR or CT")
            continue
        if not any(targets.values()):
            ledger.excluded(source, "no_report", "the exam has no report text (unlabelled images)")
            continue
        missing = [k for k in outputs if not targets[k]]
        if missing:
            ledger.excluded(source, "missing_output", f"output section {missing[0]} is empty")
            continue
        entry = cache.exam(eid) if cache is not None else None
        if not entry or not entry.get("images"):
            ledger.excluded(source, "no_images", "no usable images in the ingest cache for this exam")
            continue
        items.append(_item(source, eid, task, variant, row, (), outputs, {}, targets, patients, visits,
                           modality=row["modality"], images=entry["images"], vendor=entry.get("vendor")))
    for row in export.load("records"):
        rid = str(row["record_id"])
        source = f"records/{rid}"
        task = row.get("task")
        if task not in TASKS:
            ledger.excluded(source, "unknown_task", f"task {task!r} is not one of the record tasks")
            continue
        variant = variants.get(row.get("variant") or "")
        ins, outs = sections_of(task, variant)
        targets = {k: _text(row.get(k)) for k in outs}
        missing = [k for k in outs if not targets[k]]
        if missing:
            ledger.excluded(source, "missing_output", f"output section {missing[0]} is empty")
            continue
        inputs = {k: _text(row.get(k)) for k in ins if _text(row.get(k))}
        if not inputs:
            ledger.excluded(source, "no_inputs", "every input section is empty")
            continue
        items.append(_item(source, rid, task, variant, row, ins, outs, inputs, targets, patients, visits))
    kept = []
    for it in items:
        prompt = render_prompt(it, prompts)
        it.tokens = counter.count(prompt.replace("<image>", "")) + \
            counter.count(format_sections(it.targets, it.output_keys, it.lang))
        if it.tokens > max_tokens:
            ledger.excluded(it.source, "too_long", f"{it.tokens} tokens > {max_tokens} ({counter.name})")
            continue
        kept.append(it)
    return kept


def _item(source, iid, task, variant, row, ins, outs, inputs, targets, patients, visits, **extra) -> Item:
    pid = str(row["patient_id"])
    vid = str(row["visit_id"]) if row.get("visit_id") is not None else None
    patient = patients.get(pid, {})
    when = row.get("exam_time") or row.get("record_time")
    return Item(source, iid, task, variant.name if variant else None, row.get("lang") or "zh", pid, vid, when,
                tuple(ins), tuple(outs), inputs, targets, age_days=age_days(patient.get("birth_date"), when),
                sex=patient.get("sex"), visit_kind=(visits.get(vid) or {}).get("kind") if vid else None, **extra)


def render_prompt(it: Item, prompts: Prompts) -> str:
    if it.modality:
        date = it.time[:10] if it.time else None
        return prompts.radiology(it.lang, it.modality, date, it.age_days, len(it.images), it.output_keys)
    return prompts.record(it.lang, it.task, it.inputs, it.input_keys, it.output_keys)
