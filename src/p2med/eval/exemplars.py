"""One-shot exemplars for the judge, per language, task and component (``configs/eval/judge_exemplars.yaml``).

Each exemplar is a reference, a candidate, and for each judged metric the analysis a specialist would write and
its score. The shipped file is ours; a hospital's specialists replace it (``judge.exemplars=PATH``). A missing
exemplar means the judge runs zero-shot for that component, and the report says so.
Example: ``load_exemplars().get("zh", "xray_report", "impression").accuracy.score`` -> 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import check, load_config
from ..export.schema import SECTIONS, TASKS
from .benchmark import KEY_COMPONENTS

DEFAULT_PATH = Path(__file__).resolve().parents[3] / "configs" / "eval" / "judge_exemplars.yaml"


@dataclass
class Judged:
    analysis: str = ""   # the specialist's reasoning, written before the score
    score: int = 3       # 1..5

    def __post_init__(self) -> None:
        check(bool(self.analysis.strip()), "analysis", "must not be empty")
        check(1 <= self.score <= 5, "score", f"must be 1..5, got {self.score}")


@dataclass
class Exemplar:
    reference: str = ""                   # the physician's text (= 5 by definition)
    candidate: str = ""                   # a model answer to be judged
    accuracy: Judged | None = None        # every component
    comprehensiveness: Judged | None = None  # the six key components only

    def __post_init__(self) -> None:
        check(bool(self.reference.strip()) and bool(self.candidate.strip()), "reference/candidate",
              "both texts are needed")
        check(self.accuracy is not None, "accuracy", "every exemplar judges accuracy")


@dataclass
class ExemplarSet:
    exemplars: dict[str, dict[str, dict[str, Exemplar]]] = field(default_factory=dict)  # lang -> task -> section

    def __post_init__(self) -> None:
        for lang, tasks in self.exemplars.items():
            check(lang in ("zh", "en"), "exemplars", f"language must be zh or en, got {lang!r}")
            for task, comps in tasks.items():
                check(task in TASKS, f"exemplars.{lang}", f"unknown task {task!r}; known: {sorted(TASKS)}")
                for key, ex in comps.items():
                    where = f"exemplars.{lang}.{task}.{key}"
                    check(key in SECTIONS, where, f"unknown section {key!r}")
                    key_comp = (task, key) in KEY_COMPONENTS
                    check(key_comp == (ex.comprehensiveness is not None), where,
                          "comprehensiveness is judged for the six key components, and only for them")

    def get(self, lang: str, task: str, key: str) -> Exemplar | None:
        return self.exemplars.get(lang, {}).get(task, {}).get(key)


def load_exemplars(path: str | Path | None = None) -> ExemplarSet:
    return load_config(ExemplarSet, path or DEFAULT_PATH)
