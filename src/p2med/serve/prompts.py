"""The prompts the server puts before a study's images or a record's fields, worded as in training
(docs/dataset-format.md): a report prompt per exam (time, the child's age, modality, one ``<image>`` per view
or series) and a record prompt per task (its input sections, then the output format).

It does not know the curation's configurable prompt set (``configs/prompts/``): ``report_prompt`` and
``record_prompt`` are the only places that word a prompt, so switching to it changes these two functions.
Example: ``report_prompt("XR", "2022-05-15", 1890, 1, "zh")`` ->
``"当前影像资料如下：【检查时间】2022-05-15（患儿年龄5岁2月）【检查方式】X线【影像】<image>\\n请根据…"``.
"""

from __future__ import annotations

from ..common.errors import P2MedError
from ..export.schema import TASKS
from ..text.sections import header

MODALITY = {"XR": ("X线", "X-ray"), "CT": ("CT", "CT")}


def age_text(age_days: int | None, lang: str) -> str:
    """'5岁2月' / '5 y 2 m' from days (empty when unknown)."""
    if age_days is None or age_days < 0:
        return ""
    years, months = int(age_days // 365.25), int((age_days % 365.25) // 30.44)
    if lang == "zh":
        return f"{years}岁{months}月" if years else f"{months}月{int(age_days % 30.44)}天"
    return f"{years} y {months} m" if years else f"{months} m {int(age_days % 30.44)} d"


def _outputs(task: str, lang: str) -> str:
    dots = "……" if lang == "zh" else " ... "
    return "".join(header(k, lang) + dots for k in TASKS[task].outputs).strip()


def report_prompt(modality: str, exam_date: str, age_days: int | None, n_images: int, lang: str) -> str:
    """The human turn of one exam: one ``<image>`` per view (X-ray) or series (CT)."""
    if modality not in MODALITY:
        raise P2MedError(f"modality {modality!r}: expected XR or CT")
    task = "xray_report" if modality == "XR" else "ct_report"
    age = age_text(age_days, lang)
    images = "<image>" * n_images
    if lang == "zh":
        when = f"{exam_date}（患儿年龄{age}）" if age else exam_date
        return (f"当前影像资料如下：【检查时间】{when}【检查方式】{MODALITY[modality][0]}【影像】{images}\n"
                f"请根据以上信息，结合专业影像学知识，按以下格式生成报告：{_outputs(task, lang)}")
    when = f"{exam_date} (age {age})" if age else exam_date
    return (f"Current radiological data is as follows: [Examination time] {when} [Examination modality] "
            f"{MODALITY[modality][1]} [Image] {images}\nBased on the above information, combined with professional "
            f"radiological knowledge, generate a report in the format: {_outputs(task, lang)}")


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
    given = [(k, str(fields[k]).strip()) for k in spec.inputs if str(fields.get(k) or "").strip()]
    if not given:
        raise P2MedError(f"task {task}: every input field is empty; give at least one of {list(spec.inputs)}")
    body = "".join(f"{header(k, lang)}{'' if lang == 'zh' else ' '}{v}" + ("" if lang == "zh" else " ")
                   for k, v in given).strip()
    if lang == "zh":
        return (f"当前病历资料如下：{body}\n请根据以上信息，结合专业医学知识，按以下格式生成{spec.zh}：" +
                _outputs(task, lang))
    return (f"Current medical record data is as follows: {body}\nBased on the above information, combined with "
            f"professional medical knowledge, generate the {spec.en.lower()} in the format: {_outputs(task, lang)}")
