"""Ingestion entry points: one exam's files (``ingest_files``) or a whole export into a cache (``ingest_export``).

``ingest_files`` needs no export: it indexes the given files, decides the modality when not told (CT when there
is a CT series or a NIfTI volume, else radiograph), keeps the views / series the rules choose and returns them
as float32 arrays with their ImageEntry metadata and every file's ledger outcome (the server calls it on an
uploaded study). ``ingest_export`` runs it over every exam row of an export in worker processes (one exam per
task, ``parallel.run_tasks``), writes the content-addressed cache, ``exams.jsonl``, ``ledger.jsonl`` and
``manifest.json`` (docs/ingest-cache.md), and resumes: each finished exam is journalled, so a rerun skips it.
Example: ``ingest_export("runs/h", "runs/cache", IngestConfig(), workers=2)`` -> ``{"exams_with_images": 18, ...}``.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..common.atomic import write_jsonl
from ..common.errors import P2MedError
from ..common.ledger import LEDGER, MANIFEST, Ledger, list_files, read_manifest, write_manifest
from ..config import to_dict
from ..export.tables import BadRow, Export
from .cache import EXAMS, read_exams, sync, write_array
from .config import IngestConfig
from .ct import process_ct
from .dicom_index import CT_MODALITIES, XR_MODALITIES, ExamIndex, Outcome, index_files
from .keywords import compile_patterns
from .parallel import run_tasks
from .xray import process_xr

log = logging.getLogger(__name__)
JOURNAL = ".progress.jsonl"
_TABLE_FILES = {"export.json", "manifest.json"}
_STATUS_RANK = {"used": 0, "excluded": 1, "quarantined": 2}


@dataclass
class ExamImages:
    """What one exam gives the model: images in entry order, warnings, and each input file's outcome."""

    modality: str | None
    images: list[tuple[dict, np.ndarray]]    # (ImageEntry without array/sha256, float32 [S, H, W])
    warnings: list[str]
    files: dict[str, Outcome]                # file name -> used | excluded | quarantined with reason


def guess_modality(idx: ExamIndex) -> str | None:
    """CT when the files hold a CT image or a NIfTI volume, XR when a radiograph or a picture, else None."""
    mods = {(h.modality or "").upper() for h in idx.dicom.values()}
    if mods & CT_MODALITIES or idx.niftis:
        return "CT"
    if mods & XR_MODALITIES or "" in mods or idx.rasters:
        return "XR"
    return None


def ingest_files(paths: list[Path], cfg: IngestConfig | None = None, modality: str | None = None,
                 names: list[str] | None = None, dtype=np.float32) -> ExamImages:
    """Process the files of ONE exam (no export needed). ``names`` label the files (default: the paths);
    ``modality`` "XR" | "CT" (default: guessed); arrays are float32 unless ``dtype`` says otherwise."""
    cfg = cfg or IngestConfig()
    idx = index_files(list(paths), names)
    modality = modality or guess_modality(idx)
    images: list[tuple[dict, np.ndarray]] = []
    warnings: list[str] = []
    if modality == "CT":
        images, warnings = process_ct(idx, cfg, dtype)
        idx.finish("other_modality", "not a CT image, and this is a CT exam")
    elif modality == "XR":
        images, warnings = process_xr(idx, cfg, dtype)
        idx.finish("other_modality", "not a radiograph, and this is an X-ray exam")
    else:
        idx.finish("no_images", "the exam has no usable image")
    if not images:
        warnings.append("no image kept")
    return ExamImages(modality if images else None, images, warnings, dict(idx.outcomes))


# ------------------------------------------------------------------------------------------------ the export
def _exam_task(task: tuple) -> tuple[str, dict | None, list[dict]]:
    """Worker: ingest one exam, store its arrays, return (exam_id, exam record or None, ledger rows)."""
    exam_id, modality, root, rels, cfg, out_dir = task
    try:
        result = ingest_files([os.path.join(root, r) for r in rels], cfg, modality, rels, dtype=np.float16)
        entries = []
        for entry, arr in result.images:
            rel, sha = write_array(out_dir, arr, durable=False)           # the main process fsyncs them
            entries.append({**entry, "array": rel, "sha256": sha})
        record = {"exam_id": exam_id, "modality": modality, "images": entries, "warnings": result.warnings} \
            if entries else None
        rows = [_row(name, o, exam_id) for name, o in result.files.items()]
    except Exception as exc:  # noqa: BLE001 - one broken exam must never stop the batch
        log.error("an exam failed with %s (its files are quarantined)", type(exc).__name__)
        record = None
        rows = [_row(r, Outcome("quarantined", "internal_error", f"ingest failed on this exam: "
                                                                   f"{type(exc).__name__}"), exam_id) for r in rels]
    return exam_id, record, rows


def _crashed(task: tuple) -> tuple[str, None, list[dict]]:
    """What an exam whose worker process died (twice) leaves: its files quarantined."""
    exam_id, rels = task[0], task[3]
    log.error("a worker process died on an exam twice (a decoder crash?); its files are quarantined")
    why = Outcome("quarantined", "internal_error", "the worker process died on this exam (a decoder crash?)")
    return exam_id, None, [_row(r, why, exam_id) for r in rels]


def _warm_up(cfg: IngestConfig) -> None:
    """Do here, once, what each forked worker would otherwise redo in every run (~50 ms a worker): import the
    header walker (``read_header`` imports it lazily) and compile the config's keyword patterns."""
    from . import dicom_walker  # noqa: F401

    compile_patterns([w for f in fields(cfg) if f.name.endswith("_words") for w in getattr(cfg, f.name)],
                     cfg.lung_kernels + cfg.soft_kernels)


def _row(source: str, o: Outcome, exam_id: str) -> dict:
    reason = None if o.code is None else f"{o.code}: {o.text}" if o.text else o.code
    return {"source": source, "status": o.status, "reason": reason, "exam_id": exam_id}


def _resolve(root: Path, files: list, all_files: list[str]) -> tuple[list[str], list[str]]:
    """The export-relative files an exam row points to (folders expanded; ``all_files`` sorted) and problems
    with its paths."""
    out, problems = [], []
    for p in files or []:
        if not isinstance(p, str) or not p or os.path.isabs(p) or ".." in Path(p).parts:
            problems.append(f"path {p!r} is not relative to the export; ignored")
            continue
        rel = Path(p).as_posix().strip("/")
        if (root / rel).is_dir():                            # all_files is sorted: "d/..." lies in ["d/", "d0")
            out.extend(all_files[bisect.bisect_left(all_files, rel + "/"):bisect.bisect_left(all_files, rel + "0")])
        elif (root / rel).is_file():
            out.append(rel)
        else:
            problems.append(f"path {p!r} does not exist in the export")
    return sorted(set(out)), problems


def _load_previous(out: Path, cfg_dict: dict) -> dict[str, tuple[dict | None, list[dict]]]:
    """Exams finished by an earlier run into ``out`` (final files and the journal) -> (record, ledger rows)."""
    done: dict[str, tuple[dict | None, list[dict]]] = {}
    if (out / MANIFEST).is_file():
        manifest = read_manifest(out)
        if manifest.get("params", {}).get("config") != cfg_dict:
            raise P2MedError(f"{out} holds a cache made with a different config; use another --out or --overwrite")
        records = read_exams(out / EXAMS) if (out / EXAMS).is_file() else {}
        rows_by_exam: dict[str, list[dict]] = {}
        for row in Ledger.read(out / LEDGER).rows() if (out / LEDGER).is_file() else []:
            if row.get("exam_id"):
                rows_by_exam.setdefault(row["exam_id"], []).append(row)
        for eid, rows in rows_by_exam.items():
            done[eid] = (records.get(eid), rows)
    journal = out / JOURNAL
    if journal.is_file():
        with open(journal, encoding="utf-8") as fh:
            for line in fh:
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    continue                      # a line cut short by a crash: that exam runs again
                if item.get("config") != cfg_dict:
                    raise P2MedError(f"{out} holds an interrupted run with a different config; use another --out "
                                     "or --overwrite")
                done[item["exam_id"]] = (item["record"], item["rows"])
    return done


def ingest_export(export_dir: str | os.PathLike, out_dir: str | os.PathLike, cfg: IngestConfig | None = None,
                  workers: int = 2, progress: bool = True) -> dict:
    """Ingest every exam of ``export_dir`` into the cache ``out_dir``; returns the manifest's counts."""
    cfg = cfg or IngestConfig()
    root, out = Path(export_dir), Path(out_dir)
    try:
        export = Export.open(root)
    except FileNotFoundError as exc:
        raise P2MedError(str(exc)) from exc
    table = export.table_path("exams")
    if table is None:
        raise P2MedError(f"{root} has no exams table (exams.jsonl / .csv / .parquet): nothing to ingest")
    out.mkdir(parents=True, exist_ok=True)
    cfg_dict = json.loads(json.dumps(to_dict(cfg)))          # as it reads back from JSON (tuples -> lists)
    done = _load_previous(out, cfg_dict)
    all_files = list_files(root, exclude=())
    with contextlib.suppress(ValueError):                    # a cache inside the export is not an input
        inside = out.resolve().relative_to(root.resolve()).as_posix() + "/"
        all_files = [f for f in all_files if not f.startswith(inside)]
    ledger_rows: list[dict] = []
    tasks, seen, bad_rows = [], set(), 0
    for line, row in export.rows("exams"):
        if isinstance(row, BadRow) or not row.get("exam_id"):
            bad_rows += 1
            continue
        eid, modality = str(row["exam_id"]), row.get("modality")
        if eid in seen:
            log.warning("%s:%d repeats an exam_id; the row is skipped", table.name, line)
            bad_rows += 1
            continue
        seen.add(eid)
        rels, problems = _resolve(root, row.get("files"), all_files)
        for p in problems:
            log.warning("%s:%d files: %s", table.name, line, p)
        if modality not in ("XR", "CT"):
            ledger_rows.append({"source": f"exam:{eid}", "status": "excluded", "reason":
                                f"bad_modality: modality {modality!r} is neither XR nor CT", "exam_id": eid})
            continue
        if not rels:
            why = "no_images: the exam row lists no image file" + (f" ({problems[0]})" if problems else "")
            ledger_rows.append({"source": f"exam:{eid}", "status": "excluded", "reason": why, "exam_id": eid})
            continue
        if eid not in done:
            tasks.append((eid, modality, str(root), rels, cfg, str(out)))
    tasks.sort(key=lambda t: (t[1] != "CT", t[0]))                     # big CT exams first: better balance
    _warm_up(cfg)
    journal = open(out / JOURNAL, "a", encoding="utf-8")
    bar = tqdm(total=len(tasks), desc="ingest exams", disable=not progress)
    try:
        for eid, record, rows in run_tasks(_exam_task, tasks, workers, on_crash=_crashed):
            sync([out / e["array"] for e in (record or {}).get("images", [])])     # durable before journalled
            journal.write(json.dumps({"exam_id": eid, "record": record, "rows": rows, "config": cfg_dict},
                                     ensure_ascii=False, sort_keys=True) + "\n")
            journal.flush()
            os.fsync(journal.fileno())
            done[eid] = (record, rows)
            bar.update()
    finally:
        bar.close()
        journal.close()
    return _finish(root, out, cfg_dict, export, table, seen, done, ledger_rows, all_files, bad_rows)


def _finish(root, out, cfg_dict, export, table, seen, done, ledger_rows, all_files, bad_rows) -> dict:
    """Write exams.jsonl, ledger.jsonl and manifest.json from every finished exam, then drop the journal."""
    records = {eid: rec for eid, (rec, _) in done.items() if eid in seen and rec is not None}
    by_source: dict[str, dict] = {}
    for eid in sorted(done):
        if eid not in seen:
            continue
        for row in done[eid][1]:
            prev = by_source.get(row["source"])
            if prev is None or _STATUS_RANK[row["status"]] < _STATUS_RANK[prev["status"]]:
                by_source[row["source"]] = row
    ledger = Ledger()
    for row in ledger_rows + [by_source[s] for s in sorted(by_source)]:
        ledger.add(row["source"], row["status"], *(row["reason"].split(": ", 1) if row["reason"] else ()),
                   exam_id=row["exam_id"])
    for rel in all_files:
        if rel in ledger:
            continue
        if rel == table.name:
            ledger.used(rel)
        elif "/" not in rel and (rel in _TABLE_FILES or Path(rel).stem in ("patients", "visits", "records")):
            ledger.excluded(rel, "not_imaging", "an export table or metadata file that ingest does not read")
        else:
            ledger.excluded(rel, "unreferenced", "no exam row lists this file")
    write_jsonl(out / EXAMS, [records[e] for e in sorted(records)])
    ledger.write(out)
    images = [e for r in records.values() for e in r["images"]]
    counts = {"exam_rows": len(seen), "bad_exam_rows": bad_rows, "exams_with_images": len(records),
              "exams_by_modality": dict(sorted(Counter(r["modality"] for r in records.values()).items())),
              "images_by_role": dict(sorted(Counter(e["role"] for e in images).items())),
              "chosen_by": dict(sorted(Counter(e["chosen_by"] for e in images).items())),
              "subsampled_images": sum(1 for e in images if e["true_slices"] < e.get("source_slices", 0)),
              "exams_with_warnings": sum(1 for r in records.values() if r["warnings"]),
              "arrays": len({e["sha256"] for e in images}),
              "ledger": ledger.counts(), "ledger_reasons": ledger.reason_counts()}
    write_manifest(out, "ingest", {"config": cfg_dict, "export_name": export.meta.get("name")}, counts,
                   files=[EXAMS, LEDGER], exams_index=EXAMS)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(out / JOURNAL)
    log.info("ingest: %d of %d exams gave images; files %s", len(records), len(seen), ledger.counts())
    return counts
