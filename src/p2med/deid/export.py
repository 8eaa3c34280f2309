"""``p2med deid``: rewrite a whole export into a de-identified export of the same schema.

Plan (main process): read the tables, give every patient its pseudonym, date shift and known identifiers
(the identifying columns, then dropped), map every image file to a pseudonymous path
(``images/<exam pseudonym>/<path pseudonym>.dcm``: source paths hold exam ids and SOPInstanceUIDs). Images
(worker processes, tqdm progress): ``dicom.process_file``; each finished file is journaled, so an interrupted
run resumes. Text (main process): every text field scrubbed with the patient's identifiers from the export and
from their DICOM headers; ids pseudonymized, times shifted. The output is built in ``.NAME.partial`` and renamed
into place. The source is only read. Ledger sources are pseudonymous too (``records/R...``, the output path of
an image), since the ledger lives in the de-identified export. Example:
``deidentify_export(Path("runs/h"), Path("runs/h-deid"), DeidKey.load("deid.key"), DeidConfig())``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import multiprocessing as mp
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from ..common.atomic import write_json, write_jsonl
from ..common.errors import P2MedError
from ..common.ledger import LEDGER, MANIFEST, Ledger, write_manifest
from ..config import to_dict
from ..export.schema import FORMAT_NAME, FORMAT_VERSION, ID_FIELD, IDENTIFYING_FIELDS, TABLES
from ..export.tables import EXPORT_JSON, BadRow, Export, find_table
from .config import DeidConfig
from .dates import shift_iso
from .dicom import FileJob, FileResult, PatientContext, WorkerSetup, add_header_values, init_worker, \
    output_suffix, process_file
from .keys import DeidKey
from .profile import METHOD
from .text import KnownIdentifiers, Scrubber

log = logging.getLogger(__name__)
ID_KINDS = {"patient_id": "patient", "visit_id": "visit", "exam_id": "exam", "record_id": "record"}
TIME_FIELDS = ("birth_date", "start_time", "end_time", "exam_time", "record_time")
PASS_FIELDS = ("sex", "kind", "modality", "task", "lang", "report_origin", "variant")
JOURNAL = ".deid-journal.jsonl"
SKIP_FILES = {EXPORT_JSON, MANIFEST, LEDGER}


class DeidError(P2MedError, ValueError):
    pass


@dataclass
class Plan:
    rows: dict[str, list[tuple[int, dict | BadRow]]]
    patients: dict[str, PatientContext]
    jobs: list[FileJob]
    exam_entries: dict[str, list[tuple[str, list[str]]]]   # raw exam id -> [(output entry, its output files)]
    missing: list[str] = field(default_factory=list)        # ledger sources of exam entries that do not exist
    unreferenced: list[str] = field(default_factory=list)   # ledger sources of files no exam points to


def _split(value) -> list[str]:
    return [v.strip() for v in str(value).split("|") if v.strip()] if value else []


def known_from_row(row: dict) -> KnownIdentifiers:
    """A patient's identifiers from the identifying columns of the patients table."""
    known = KnownIdentifiers()
    for name in [row.get("name")] + _split(row.get("guardian_names")):
        if name:
            known.add_person(name)
    if row.get("id_number"):
        known.add_number(row["id_number"], "id_number")
    for phone in _split(row.get("phone")):
        known.add_number(phone, "phone")
    if row.get("address"):
        known.add_address(row["address"])
    for no in _split(row.get("medical_record_numbers")):
        known.add_number(no, "record_no")
    return known


def plan_export(src: Path, key: DeidKey, cfg: DeidConfig) -> Plan:
    export = Export.open(src)
    rows = {t: list(export.rows(t)) for t in TABLES}
    patient_rows = {r["patient_id"]: r for _, r in rows["patients"]
                    if not isinstance(r, BadRow) and r.get("patient_id")}
    pids = sorted({str(r["patient_id"]) for t in TABLES for _, r in rows[t]
                   if not isinstance(r, BadRow) and r.get("patient_id")})
    patients: dict[str, PatientContext] = {}
    for pid in pids:
        known = known_from_row(patient_rows.get(pid, {}))
        patients[pid] = PatientContext(key.pseudonym("patient", pid),
                                       key.shift_days(pid, cfg.shift_min_days, cfg.shift_max_days), known)
    for table in TABLES:
        for _, r in rows[table]:
            if isinstance(r, BadRow) or not r.get("patient_id"):
                continue
            ids = patients[str(r["patient_id"])].known.ids
            for fld, kind in ID_KINDS.items():
                if r.get(fld):
                    ids[str(r[fld])] = key.pseudonym(kind, str(r[fld]))

    root = src.resolve()
    jobs: list[FileJob] = []
    claimed: set[Path] = set()
    exam_entries: dict[str, list[tuple[str, list[str]]]] = {}
    missing: list[str] = []
    table_name = (find_table(src, "exams") or [Path("exams.jsonl")])[0].name
    for line, r in rows["exams"]:
        if isinstance(r, BadRow) or not r.get("exam_id") or not r.get("patient_id"):
            continue
        eid, entries = str(r["exam_id"]), r.get("files") or []
        e_pseudo = key.pseudonym("exam", eid)
        ref = _date_of(r.get("exam_time"))
        out_entries = []
        for i, entry in enumerate(entries):
            path = (root / str(entry)).resolve()
            if path != root and root not in path.parents:
                raise DeidError(f"{table_name}:{line} files: entry {i + 1} is not inside the export folder; "
                                f"paths must be relative to the export root")
            if not path.exists():
                missing.append(f"exams/{e_pseudo}/files[{i}]")
                continue
            folder = path.is_dir()
            out_entry = f"images/{e_pseudo}"
            if len(entries) > 1 or not folder:
                out_entry += "/" + key.pseudonym("path", f"{eid}/{entry}")
            files = _files_under(path) if folder else [path]
            outs = []
            for f in files:
                if f in claimed:
                    continue
                claimed.add(f)
                rel = f.relative_to(path).as_posix() if folder else ""
                out_rel = (f"{out_entry}/{key.pseudonym('path', f'{eid}/{entry}/{rel}')}" if folder else out_entry) \
                    + output_suffix(f)
                jobs.append(FileJob(str(f), out_rel, patients[str(r["patient_id"])], ref))
                outs.append(out_rel)
            out_entries.append((out_entry if folder else outs[0] if outs else out_entry, outs))
        exam_entries[eid] = out_entries
    unreferenced = []
    tables = {p.name for t in TABLES for p in find_table(src, t)}
    for f in _files_under(root):
        rel = f.relative_to(root).as_posix()
        if f not in claimed and rel not in SKIP_FILES and rel not in tables:
            unreferenced.append(f"unreferenced/{key.pseudonym('path', rel)}")
    return Plan(rows, patients, jobs, exam_entries, missing, unreferenced)


def _files_under(path: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / n for n in sorted(filenames) if not n.startswith(".")]
    return out


def _date_of(value) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def deidentify_export(src: Path, out: Path, key: DeidKey, cfg: DeidConfig, progress: bool = True,
                      overwrite: bool = False) -> dict:
    """Write the de-identified export of ``src`` to ``out``; returns the manifest's counts."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DeidError(f"export folder {src} does not exist")
    s, o = src.resolve(), out.resolve()
    if o == s or s in o.parents or o in s.parents:
        raise DeidError(f"--out {out} must be outside the source export {src} (and not contain it)")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DeidError(f"{out} exists and is not empty; pass --overwrite to replace it")
    plan = plan_export(src, key, cfg)
    partial = out.with_name(f".{out.name}.partial")
    partial.mkdir(parents=True, exist_ok=True)
    results = _run_images(plan, partial, key, cfg, progress)
    for job in plan.jobs:
        add_header_values(job.patient.known, results[job.out_rel].identifiers)

    ledger = Ledger()
    counts: Counter = Counter()
    text_counts: Counter = Counter()
    used_files = {r.out_rel for r in results.values() if r.status == "used"}
    for job in plan.jobs:
        r = results[job.out_rel]
        extra = {"review": r.review} if r.review else {}
        ledger.add(r.out_rel, r.status, r.code, r.text, **extra)
        counts[f"files_{r.status}"] += 1
        counts["files_flagged_for_review"] += bool(r.review)
        for k, v in r.counts.items():
            counts[f"dicom_{k}"] += v
    for source in plan.missing:
        ledger.excluded(source, "missing_file", "the exam points to a file or folder that does not exist")
    for source in plan.unreferenced:
        ledger.excluded(source, "unreferenced", "no exam points to this file; it was not copied")

    scrubbers = {pid: Scrubber(ctx.known, ctx.shift_days) for pid, ctx in plan.patients.items()}
    tables_out = {}
    for table in TABLES:
        if not find_table(src, table):
            continue
        tables_out[table] = _rewrite_table(table, plan, key, scrubbers, used_files, ledger, counts, text_counts)
    for table, rows in tables_out.items():
        write_jsonl(partial / f"{table}.jsonl", rows)
    meta = Export.open(src).meta
    generic = Scrubber(KnownIdentifiers(), 1)
    write_json(partial / EXPORT_JSON, {
        "format": FORMAT_NAME, "version": FORMAT_VERSION,
        "name": (generic.scrub(str(meta.get("name") or src.name), "en")[0] or "") + "-deid",
        "source": "p2med deid", "notes": generic.scrub(str(meta.get("notes") or ""), "en")[0] or "",
        "variants": meta.get("variants") or {},
        "deidentification": {"method": "; ".join(METHOD), "key_id": key.key_id,
                              "shift_days": [cfg.shift_min_days, cfg.shift_max_days]}})
    ledger.add(EXPORT_JSON, "used")
    ledger.write(partial)
    summary = {**dict(sorted(counts.items())), "text_replacements": dict(sorted(text_counts.items())),
               "ledger": ledger.counts()}
    params = {k: v for k, v in to_dict(cfg).items() if k != "workers"}
    (partial / JOURNAL).unlink(missing_ok=True)
    write_manifest(partial, "deid", params, summary, key_id=key.key_id)
    if out.exists():
        shutil.rmtree(out)
    os.replace(partial, out)
    log.info("de-identified %d image files (%d used, %d quarantined, %d flagged for review) and %d table rows",
             len(plan.jobs), counts["files_used"], counts["files_quarantined"], counts["files_flagged_for_review"],
             sum(len(v) for v in tables_out.values()))
    return summary


def _run_images(plan: Plan, partial: Path, key: DeidKey, cfg: DeidConfig, progress: bool) -> dict[str, FileResult]:
    """Process every image job (resuming from the journal); returns out_rel -> result with identifiers."""
    journal = partial / JOURNAL
    done: dict[str, dict] = {}
    if journal.is_file():
        for line in journal.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["out_rel"]] = row
        log.info("resuming: %d of %d image files were already de-identified", len(done), len(plan.jobs))
    jobs = [replace(j, headers_only=True) if j.out_rel in done else j for j in plan.jobs]
    setup = WorkerSetup(key, str(partial), cfg.burned_in, cfg.suspect_burned_in)
    results: dict[str, FileResult] = {}
    bar = tqdm(total=len(jobs), desc="de-identify images", unit="file", disable=not progress)
    with open(journal, "a", encoding="utf-8") as fh:
        for res in _map(jobs, setup, cfg.workers):
            if res.out_rel in done:          # resumed: status from the journal, identifiers re-read
                prev = done[res.out_rel]
                res = FileResult(res.out_rel, prev["status"], prev["code"], prev["text"], prev["review"],
                                 tuple(prev["box"]) if prev["box"] else None, res.identifiers, prev["counts"])
            else:
                fh.write(json.dumps(res.journal(), sort_keys=True) + "\n")
                fh.flush()
            results[res.out_rel] = res
            bar.update()
    bar.close()
    return results


def _map(jobs: list[FileJob], setup: WorkerSetup, workers: int):
    if workers <= 1 or len(jobs) < 2:
        init_worker(setup)
        yield from map(process_file, jobs)
        return
    ctx = mp.get_context("fork" if os.name == "posix" else "spawn")
    with ctx.Pool(workers, initializer=init_worker, initargs=(setup,)) as pool:
        yield from pool.imap_unordered(process_file, jobs, chunksize=4)


def _rewrite_table(table: str, plan: Plan, key: DeidKey, scrubbers: dict[str, Scrubber], used_files: set[str],
                   ledger: Ledger, counts: Counter, text_counts: Counter) -> list[dict]:
    out_rows = []
    seen: set[str] = set()
    id_field = ID_FIELD[table]
    for line, row in plan.rows[table]:
        if isinstance(row, BadRow) or not row.get(id_field) or not row.get("patient_id"):
            ledger.excluded(f"{table}:{line}", "bad_row", "the row cannot be parsed or has no id / patient_id")
            continue
        pseudo = key.pseudonym(ID_KINDS[id_field], str(row[id_field]))
        if pseudo in seen:
            ledger.excluded(f"{table}:{line}", "duplicate_id", f"a second row with the id of {table}/{pseudo}")
            continue
        seen.add(pseudo)
        pid = str(row["patient_id"])
        ctx, scrubber = plan.patients[pid], scrubbers[pid]
        ref = _date_of(row.get("record_time") or row.get("exam_time") or row.get("start_time"))
        new: dict = {}
        for fld, value in row.items():
            if fld in IDENTIFYING_FIELDS or value is None:
                continue
            if fld in ID_KINDS:
                new[fld] = key.pseudonym(ID_KINDS[fld], str(value))
            elif fld in TIME_FIELDS:
                shifted = shift_iso(str(value), ctx.shift_days)
                counts["unparseable_times"] += shifted is None
                if shifted is not None:
                    new[fld] = shifted
            elif fld in PASS_FIELDS:
                new[fld] = value
            elif fld == "files":
                new[fld] = [entry for entry, outs in plan.exam_entries.get(str(row["exam_id"]), [])
                            if any(o in used_files for o in outs)]
            elif isinstance(value, str):
                new[fld], c = scrubber.scrub(value, row.get("lang") or "zh", ref)
                text_counts.update(c)
            else:
                new[fld] = value
        if table == "exams" and not new.get("files") and not (new.get("findings") or new.get("impression")):
            ledger.excluded(f"{table}/{pseudo}", "no_images_left", "every image of the exam was quarantined and "
                            "it has no report text")
            continue
        out_rows.append(new)
        ledger.used(f"{table}/{pseudo}")
    return out_rows
