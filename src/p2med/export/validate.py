"""Check an export against the schema: one ``Problem`` per issue, naming file, line and field.

Broken required fields are errors (``p2med validate`` exits 1); missing optional fields and records that
``p2med build`` will drop (an empty output section) are warnings. Knows nothing of images' contents.
Example line: ``ERROR exams.jsonl:12 modality: expected one of XR, CT, got 'MR'``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .schema import (FIELDS, FORMAT_NAME, ID_FIELD, SECTIONS, TABLES, TASKS, Variant, sections_of, task_of)
from .tables import EXPORT_JSON, BadRow, Export, TableError, find_table


@dataclass(frozen=True)
class Problem:
    severity: str  # "error" | "warning"
    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        what = f" {self.field}:" if self.field else ""
        return f"{self.severity.upper()} {where}{what} {self.message}"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    tasks: Counter = field(default_factory=Counter)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


def _is_date(v: str) -> bool:
    try:
        dt.date.fromisoformat(v)
        return len(v) == 10
    except ValueError:
        return False


def _is_datetime(v: str) -> bool:
    try:
        dt.datetime.fromisoformat(v)
        return True
    except ValueError:
        return False


class _Checker:
    def __init__(self, export: Export) -> None:
        self.export = export
        self.report = Report()
        self.ids: dict[str, dict[str, Any]] = {t: {} for t in TABLES}

    def add(self, severity: str, file: str, line: int | None, fld: str | None, msg: str) -> None:
        self.report.problems.append(Problem(severity, file, line, fld, msg))

    def run(self) -> Report:
        root = self.export.root
        meta = self.export.meta
        variants: dict[str, Variant] = {}
        if not (root / EXPORT_JSON).is_file():
            self.add("warning", EXPORT_JSON, None, None, "missing; assuming no task variants")
        else:
            if meta.get("format") != FORMAT_NAME:
                self.add("warning", EXPORT_JSON, None, "format", f"expected {FORMAT_NAME!r}, got {meta.get('format')!r}")
            variants = self._check_variants(meta.get("variants") or {})
        present = []
        for table in TABLES:
            found = find_table(root, table)
            if len(found) > 1:
                self.add("error", found[1].name, None, None,
                         f"table {table} is given twice ({', '.join(p.name for p in found)}); keep one")
            if found:
                present.append(table)
        if "exams" not in present and "records" not in present:
            self.add("error", str(root.name), None, None, "no exams or records table (exams.jsonl/.csv/.parquet)")
        for table in ("patients", "visits", "exams", "records"):  # order: references point backwards
            if table in present:
                self._check_table(table, variants)
            elif table == "patients":
                self.add("warning", "patients.jsonl", None, None, "no patients table: sex and age unknown")
        return self.report

    def _check_variants(self, raw: Any) -> dict[str, Variant]:
        out = {}
        if not isinstance(raw, dict):
            self.add("error", EXPORT_JSON, None, "variants", "must be an object of name -> variant")
            return out
        for name, spec in raw.items():
            where = f"variants.{name}"
            try:
                v = Variant.from_json(name, spec)
            except (KeyError, TypeError) as exc:
                self.add("error", EXPORT_JSON, None, where, f"needs task, inputs and outputs ({exc})")
                continue
            if v.task not in TASKS:
                self.add("error", EXPORT_JSON, None, f"{where}.task", f"unknown task {v.task!r}; tasks: {sorted(TASKS)}")
                continue
            unknown = [s for s in v.inputs + v.outputs if s not in SECTIONS]
            if unknown:
                self.add("error", EXPORT_JSON, None, where, f"unknown sections {unknown}; known: {sorted(SECTIONS)}")
                continue
            if not v.outputs:
                self.add("error", EXPORT_JSON, None, f"{where}.outputs", "a variant needs at least one output")
                continue
            out[name] = v
        return out

    def _check_table(self, table: str, variants: dict[str, Variant]) -> None:
        path = self.export.table_path(table)
        assert path is not None
        fname = path.name
        fields = {f.name: f for f in FIELDS[table]}
        id_field = ID_FIELD[table]
        seen_unknown: set[str] = set()
        missing_optional: Counter = Counter()
        n = 0
        try:
            rows = list(self.export.rows(table))
        except TableError as exc:
            self.add("error", fname, None, None, str(exc))
            return
        for line, row in rows:
            if isinstance(row, BadRow):
                self.add("error", fname, line, None, f"{row.error}; the line is skipped")
                continue
            n += 1
            for key in row:
                if key not in fields and key not in seen_unknown:
                    seen_unknown.add(key)
                    self.add("warning", fname, line, key, "unknown column (ignored)")
            for f in fields.values():
                value = row.get(f.name)
                if value is None or value == [] or (isinstance(value, str) and not value.strip()):
                    if f.required:
                        self.add("error", fname, line, f.name, f"required ({f.doc}) but empty")
                    elif f.kind in ("enum", "date", "datetime") and f.name not in ("lang", "variant", "end_time"):
                        missing_optional[f.name] += 1
                    continue
                self._check_value(fname, line, f, value)
            rid = row.get(id_field)
            if isinstance(rid, (str, int)) and rid is not None:
                rid = str(rid)
                if rid in self.ids[table]:
                    self.add("error", fname, line, id_field, f"duplicate id (first at line {self.ids[table][rid]['_line']})")
                else:
                    self.ids[table][rid] = {**row, "_line": line}
            self._check_refs(table, fname, line, row)
            getattr(self, f"_check_{table}")(fname, line, row, variants)
        for name, count in sorted(missing_optional.items()):
            self.add("warning", fname, None, name, f"empty in {count} of {n} rows (optional)")
        self.report.counts[table] = n

    def _check_value(self, fname: str, line: int, f, value: Any) -> None:
        if f.kind == "files":
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                self.add("error", fname, line, f.name, f"expected a list of relative paths, got {value!r}")
            return
        if not isinstance(value, (str, int)):
            self.add("error", fname, line, f.name, f"expected text, got {type(value).__name__}")
            return
        value = str(value)
        if f.kind == "enum" and value not in f.choices:
            self.add("error", fname, line, f.name, f"expected one of {', '.join(f.choices)}, got {value!r}")
        elif f.kind == "date" and not _is_date(value):
            self.add("error", fname, line, f.name, f"expected a date YYYY-MM-DD, got {value!r}")
        elif f.kind == "datetime" and not _is_datetime(value):
            self.add("error", fname, line, f.name, f"expected ISO date-time YYYY-MM-DDTHH:MM:SS, got {value!r}")

    def _check_refs(self, table: str, fname: str, line: int, row: dict) -> None:
        pid = row.get("patient_id")
        if table != "patients" and pid is not None and self.ids["patients"] and str(pid) not in self.ids["patients"]:
            self.add("error", fname, line, "patient_id", f"not in the patients table")
        vid = row.get("visit_id")
        if table in ("exams", "records") and vid is not None:
            visit = self.ids["visits"].get(str(vid))
            if visit is None:
                if self.ids["visits"] or self.export.table_path("visits"):
                    self.add("error", fname, line, "visit_id", "not in the visits table")
            elif pid is not None and str(visit.get("patient_id")) != str(pid):
                self.add("error", fname, line, "visit_id", "belongs to another patient")

    def _check_patients(self, fname, line, row, variants) -> None:
        pass

    def _check_visits(self, fname, line, row, variants) -> None:
        s, e = row.get("start_time"), row.get("end_time")
        if isinstance(s, str) and isinstance(e, str) and _is_datetime(s) and _is_datetime(e) and e < s:
            self.add("error", fname, line, "end_time", "before start_time")

    def _variant(self, fname, line, row, variants) -> Variant | None:
        name = row.get("variant")
        if name is None:
            return None
        v = variants.get(str(name))
        if v is None:
            self.add("error", fname, line, "variant", f"{name!r} is not declared in {EXPORT_JSON}")
        return v

    def _check_exams(self, fname, line, row, variants) -> None:
        files = row.get("files") or []
        has_text = any(isinstance(row.get(k), str) and row[k].strip() for k in ("findings", "impression"))
        if not files and not has_text:
            self.add("error", fname, line, "files", "an exam needs image files or report text; it has neither")
        if has_text and not row.get("lang"):
            self.add("error", fname, line, "lang", "required when the exam has report text (zh or en)")
        if isinstance(files, list):
            for p in files:
                self._check_path(fname, line, p)
        task = task_of("exams", row)
        if task:
            self.report.tasks[task] += 1
        self._variant(fname, line, row, variants)

    def _check_path(self, fname: str, line: int, p: Any) -> None:
        if not isinstance(p, str) or not p:
            self.add("error", fname, line, "files", f"expected a relative path, got {p!r}")
            return
        pp = PurePosixPath(p)
        if pp.is_absolute() or ".." in pp.parts:
            self.add("error", fname, line, "files", f"{p!r} must be relative and stay inside the export")
            return
        if not (self.export.root / p).exists():
            self.add("error", fname, line, "files", f"{p!r} does not exist in the export")

    def _check_records(self, fname, line, row, variants) -> None:
        task = row.get("task")
        if task not in TASKS or TASKS[task].table != "records":
            return  # the enum check already reported it
        variant = self._variant(fname, line, row, variants)
        if variant is not None and variant.task != task:
            self.add("error", fname, line, "variant", f"declared for task {variant.task}, record is {task}")
            return
        inputs, outputs = sections_of(task, variant)
        def empty(k: str) -> bool:
            v = row.get(k)
            return not (isinstance(v, str) and v.strip())
        if all(empty(k) for k in inputs + outputs):
            self.add("error", fname, line, None, f"no text in any section of task {task}")
            return
        for k in outputs:
            if empty(k):
                self.add("warning", fname, line, k,
                         "output section empty: `p2med build` will drop this record (SPEC section 2)")
        self.report.tasks[variant.name if variant else task] += 1


def validate(root: str | Path) -> Report:
    """Validate the export at ``root``; never raises for bad content, only reports it."""
    try:
        export = Export.open(root)
    except (FileNotFoundError, TableError) as exc:
        report = Report()
        report.problems.append(Problem("error", str(root), None, None, str(exc)))
        return report
    return _Checker(export).run()


def format_report(report: Report, max_lines: int = 200) -> str:
    lines = [str(p) for p in report.problems[:max_lines]]
    if len(report.problems) > max_lines:
        lines.append(f"... {len(report.problems) - max_lines} more problems not shown")
    counts = ", ".join(f"{k} {v}" for k, v in report.counts.items())
    tasks = ", ".join(f"{k} {v}" for k, v in sorted(report.tasks.items()))
    lines.append(f"summary: {counts}; tasks: {tasks or 'none'}; {len(report.errors)} error(s), "
                 f"{len(report.warnings)} warning(s) -> {'OK' if report.ok else 'FAILED'}")
    return "\n".join(lines)


def report_json(report: Report) -> str:
    return json.dumps({"ok": report.ok, "counts": report.counts, "tasks": dict(report.tasks),
                       "problems": [p.__dict__ for p in report.problems]}, ensure_ascii=False, indent=1)
