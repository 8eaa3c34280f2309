"""The benchmark as evaluation sees it: samples (``docs/dataset-format.md``), the 16 components and their
metrics, the sample facets the breakdowns use.

Only the last turn of a sample is evaluated; its ``target`` holds the reference sections. A component is a task's
output section; the six key ones (impression x2, preliminary, admission and current diagnosis x2) are judged
for accuracy and comprehensiveness, the others for accuracy only (SPEC section 7). A malformed line is
quarantined with its line number and field, never silently dropped.
Example: ``components("outpatient", ["preliminary_diagnosis", "treatment_recommendation"])`` ->
``[("preliminary_diagnosis", ("accuracy", "comprehensiveness")), ("treatment_recommendation", ("accuracy",))]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..common.errors import P2MedError
from ..export.schema import SECTIONS, TASKS

KEY_COMPONENTS = {("xray_report", "impression"), ("ct_report", "impression"), ("outpatient", "preliminary_diagnosis"),
                  ("first_course", "admission_diagnosis"), ("attending_round", "current_diagnosis"),
                  ("chief_round", "current_diagnosis")}
IMAGE_TASKS = ("xray_report", "ct_report")
DIAGNOSIS_KEYS = ("impression", "preliminary_diagnosis", "admission_diagnosis", "current_diagnosis")
FINDING_KEYS = ("findings", "impression")
AGE_BANDS = ((28, "neonate"), (365, "infant"), (3 * 365 + 1, "toddler"), (12 * 365 + 3, "child"),
             (18 * 365 + 4, "adolescent"))
FACETS = ("age_band", "sex", "modality", "vendor", "visit_kind")


def components(task: str, output_keys: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    """(section key, judge metrics) for each evaluated section of a sample."""
    return [(k, ("accuracy", "comprehensiveness") if (task, k) in KEY_COMPONENTS else ("accuracy",))
            for k in output_keys]


def age_band(age_days: int | None) -> str:
    """neonate < 28 d, infant < 1 y, toddler 1-3 y, child 3-12 y, adolescent 12-18 y."""
    if age_days is None:
        return "unknown"
    for limit, name in AGE_BANDS:
        if age_days < limit:
            return name
    return "adult"


@dataclass
class Sample:
    """One benchmark sample: the raw record plus what evaluation reads from it."""

    raw: dict
    line: int

    @property
    def sample_id(self) -> str:
        return self.raw["sample_id"]

    @property
    def task(self) -> str:
        return self.raw["task"]

    @property
    def lang(self) -> str:
        return self.raw["lang"]

    @property
    def output_keys(self) -> list[str]:
        return list(self.raw["output_keys"])

    @property
    def target(self) -> dict[str, str]:
        return self.raw["turns"][-1]["target"]

    @property
    def needs_images(self) -> bool:
        return bool(self.raw.get("images"))

    def facets(self) -> dict[str, str]:
        meta = self.raw.get("meta") or {}
        return {"age_band": age_band(meta.get("age_days")), "sex": meta.get("sex") or "U",
                "modality": self.raw.get("modality") or "text", "vendor": meta.get("vendor") or "unknown",
                "visit_kind": meta.get("visit_kind") or "unknown"}


def _problem(raw: object) -> str | None:
    """Why a parsed line is not a usable benchmark sample (the field and what was expected), or None."""
    if not isinstance(raw, dict):
        return "not a JSON object"
    for name in ("sample_id", "task", "lang", "output_keys", "turns"):
        if name not in raw:
            return f"field {name} is missing"
    if raw["task"] not in TASKS:
        return f"task {raw['task']!r} is not one of {sorted(TASKS)}"
    if raw["lang"] not in ("zh", "en"):
        return f"lang {raw['lang']!r} is not zh or en"
    keys = raw["output_keys"]
    if not isinstance(keys, list) or not keys or any(k not in SECTIONS for k in keys):
        return f"output_keys {keys!r} must be a non-empty list of section keys"
    turns = raw["turns"]
    if not isinstance(turns, list) or not turns or not isinstance(turns[-1], dict):
        return "turns must be a non-empty list of {human, assistant, target}"
    target = turns[-1].get("target")
    if not isinstance(target, dict) or any(not str(target.get(k) or "").strip() for k in keys):
        return f"the last turn's target must hold every output key {keys}"
    if not str(turns[-1].get("human") or "").strip():
        return "the last turn has no human text"
    return None


def load_benchmark(path: str | Path) -> tuple[list[Sample], list[tuple[str, str]]]:
    """(samples, quarantined (source, reason)) from ``samples.jsonl`` or the folder holding it."""
    path = Path(path)
    file = path / "samples.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise P2MedError(f"{file}: no benchmark here (expected DATASET/benchmark/samples.jsonl, "
                         "see docs/dataset-format.md)")
    samples: list[Sample] = []
    bad: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append((f"line {i}", f"bad_json: {file.name} line {i} is not JSON ({exc.msg})"))
            continue
        why = _problem(raw)
        if why is None and raw["sample_id"] in seen:
            why = f"sample_id {raw['sample_id']!r} repeats an earlier line"
        if why:
            sid = raw.get("sample_id") if isinstance(raw, dict) else None
            source = str(sid) if sid and sid not in seen else f"line {i}"
            bad.append((source, f"bad_sample: {file.name} line {i}: {why}"))
            continue
        seen.add(raw["sample_id"])
        samples.append(Sample(raw, i))
    if not samples:
        raise P2MedError(f"{file}: no usable benchmark sample ({len(bad)} malformed lines)")
    return samples, bad
