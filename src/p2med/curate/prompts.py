"""Task prompts: the human side of every conversation, rendered from ``configs/prompts/default.yaml``.

A radiology prompt gives the exam date as stored (shifted by de-identification), the child's age at the
exam, the modality and one ``<image>`` per X-ray view or CT series; a record prompt lists the record's input
sections. The language of the record selects the template. Example:
``Prompts.load().radiology("zh", "XR", "2022-05-15", 1890, 2)`` ->
``"当前影像资料如下：【检查时间】2022-05-15（患儿年龄5岁2月）【检查方式】X线【影像】<image><image>\\n..."``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import check, load_config
from ..export.schema import TASKS
from ..text.age import age_text
from ..text.sections import header

IMAGE_TOKEN = "<image>"
DEFAULT = Path(__file__).resolve().parents[3] / "configs" / "prompts" / "default.yaml"
KEYS = ("radiology", "record", "age", "format_item", "unknown_date", "modality")


@dataclass
class Prompts:
    zh: dict = field(default_factory=dict)  # Chinese templates (keys: radiology, record, age, format_item, ...)
    en: dict = field(default_factory=dict)  # English templates, same keys

    def __post_init__(self) -> None:
        for lang in ("zh", "en"):
            t = getattr(self, lang)
            if not t:
                continue
            missing = [k for k in KEYS if k not in t]
            check(not missing, lang, f"prompt templates miss {missing}")
            check("{images}" in t["radiology"] and "{format}" in t["radiology"], f"{lang}.radiology",
                  "needs {images} and {format}")
            check("{inputs}" in t["record"] and "{format}" in t["record"], f"{lang}.record",
                  "needs {inputs} and {format}")

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Prompts":
        return load_config(cls, path or DEFAULT)

    def _t(self, lang: str) -> dict:
        t = getattr(self, lang, None)
        check(bool(t), "lang", f"no prompt templates for language {lang!r}")
        return t

    def _format(self, lang: str, outputs: tuple[str, ...]) -> str:
        t = self._t(lang)
        sep = "" if lang == "zh" else " "
        return sep.join(t["format_item"].format(header=header(k, lang).strip("【】[]")) for k in outputs)

    def radiology(self, lang: str, modality: str, exam_date: str | None, age_days: int | None, n_images: int,
                  outputs: tuple[str, ...] = ("findings", "impression")) -> str:
        t = self._t(lang)
        age = t["age"].format(age=age_text(age_days, lang)) if age_days is not None and age_days >= 0 else ""
        return t["radiology"].format(exam_date=exam_date or t["unknown_date"], age=age,
                                     modality=t["modality"][modality], images=IMAGE_TOKEN * n_images,
                                     format=self._format(lang, outputs))

    def record(self, lang: str, task: str, inputs: dict[str, str], input_keys: tuple[str, ...],
               outputs: tuple[str, ...]) -> str:
        t = self._t(lang)
        lines = [f"{header(k, lang)}{'' if lang == 'zh' else ' '}{inputs[k].strip()}" for k in input_keys
                 if inputs.get(k)]
        name = TASKS[task].zh if lang == "zh" else TASKS[task].en.lower()
        return t["record"].format(task=name, inputs="\n".join(lines), format=self._format(lang, outputs))

