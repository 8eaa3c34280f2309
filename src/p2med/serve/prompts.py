"""The prompts the server puts before a study's images or a record's fields: the curation's prompt set
(``p2med.curate.prompts.Prompts``, ``configs/prompts/default.yaml``), so a served model reads exactly the prompts
it was trained on: a report prompt per exam (time, the child's age, modality, one ``<image>`` per view or
series) and a record prompt per task (its input sections, then the output format).
Example: ``report_prompt("XR", "2022-05-15", 1890, 1, "zh")`` ->
``"当前影像资料如下：【检查时间】2022-05-15（患儿年龄5岁2月）【检查方式】X线【影像】<image>\\n请根据…"``.
"""

from __future__ import annotations

import functools

from ..common.errors import P2MedError
from ..curate.prompts import Prompts
from ..export.schema import TASKS

MODALITY_TASK = {"XR": "xray_report", "CT": "ct_report"}


@functools.lru_cache(maxsize=1)
def _prompts() -> Prompts:
    return Prompts.load()


def report_prompt(modality: str, exam_date: str, age_days: int | None, n_images: int, lang: str) -> str:
    """The human turn of one exam: one ``<image>`` per view (X-ray) or series (CT)."""
    if modality not in MODALITY_TASK:
        raise P2MedError(f"modality {modality!r}: expected XR or CT")
    return _prompts().radiology(lang, modality, exam_date, age_days, n_images, TASKS[MODALITY_TASK[modality]].outputs)


def record_prompt(task: str, fields: dict[str, str], lang: str) -> str:
    """The human turn of a record task from its input sections (``TASKS[task].inputs``); missing ones are
    left out, an unknown field or a task without any input is an error naming it."""
    if task not in TASKS or TASKS[task].table != "records":
        raise P2MedError(f"task {task!r}: expected one of "
                         f"{sorted(t for t, s in TASKS.items() if s.table == 'records')}")
    spec = TASKS[task]
    unknown = sorted(set(fields) - set(spec.inputs))
    if unknown:
        raise P2MedError(f"task {task}: unknown field(s) {unknown}; its inputs are {list(spec.inputs)}")
    given = {k: str(fields[k]).strip() for k in spec.inputs if str(fields.get(k) or "").strip()}
    if not given:
        raise P2MedError(f"task {task}: every input field is empty; give at least one of {list(spec.inputs)}")
    return _prompts().record(lang, task, given, tuple(spec.inputs), tuple(spec.outputs))
