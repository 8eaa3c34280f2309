"""The synthetic hospital: plan patients, visits, exams and records, render the images, write the export.

Planning is sequential and cheap (text only); rendering the DICOM files runs in worker processes. Each
patient draws from its own seed stream, so the output is byte-identical for a seed whatever the number of
workers or the output path. The export is written to a temporary sibling folder and renamed into place; the
ground truth goes beside it (``<export>.truth`` by default), never inside it.
Example: ``synthesize(SynthConfig(patients=6), Path("runs/h"))``.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing as mp
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..common.atomic import write_json, write_jsonl, write_text
from ..common.ledger import write_manifest
from ..config import to_dict
from ..export.schema import TASKS
from ..export.tables import write_export
from .config import SynthConfig
from .ct_phantom import sample_anatomy as sample_ct_anatomy
from .diseases import DISEASES, Disease, diagnosis_terms
from .dicom_common import StudyContext
from .dicom_ct import CT_VENDORS, CtExamSpec, write_ct_exam
from .dicom_xray import XR_VENDORS, XrayExamSpec, write_xray_exam
from .findings import SIDES, Finding
from .near_dups import mutate
from .phi import Identity, make_doctor, make_identity, make_institution
from .records import Case, insert_phi, make_overlong
from .reports import Change, write_report
from .xray_phantom import sample_anatomy as sample_xr_anatomy

log = logging.getLogger(__name__)
OUTPATIENT_KEYS = TASKS["outpatient"].inputs + TASKS["outpatient"].outputs
TRUTH_README = """# Ground truth of a synthetic hospital (never part of the export)

- `findings.jsonl`: per exam, the planted findings (pattern, side, zone, size, strength), the change against
  the prior exam of the visit, and per view / series where the lesion is (pixel boxes, slice ranges, z in mm).
- `labels.jsonl`: per text record, its task, the diseases behind it and the defects planted in it.
- `duplicates.jsonl`: each planted copy of an outpatient record, its kind (duplicate or hard_negative) and
  the exact Jaccard similarity of character 5-grams with the original.
- `phi.jsonl`: every planted identifier: per patient the identity, per record what was written into the text,
  per exam what each DICOM file carries in its tags.
"""


@dataclass
class ExamPlan:
    exam_id: str
    visit_id: str
    modality: str
    when: dt.datetime
    findings: list[Finding]
    changes: list[Change] | None
    prior_exam_id: str | None
    findings_text: str
    impression: str
    spec: XrayExamSpec | CtExamSpec
    ctx: StudyContext
    age_years: float
    anatomy_seed: list[int]


@dataclass
class PatientPlan:
    index: int
    patient_id: str
    identity: Identity
    visits: list[dict] = field(default_factory=list)
    exams: list[ExamPlan] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    labels: list[dict] = field(default_factory=list)
    phi: list[dict] = field(default_factory=list)


def _date(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = sorted(weights)
    w = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


def _disease_for(rng, cfg: SynthConfig, inpatient: bool, age: float | None) -> Disease:
    weights = {}
    for name, w in cfg.disease_weights.items():
        d = DISEASES[name]
        w *= d.inpatient if inpatient else (1.0 - d.inpatient)
        if age is not None and not (d.age[0] - 0.5 <= age <= d.age[1] + 2):
            w = 0.0
        if w > 0:
            weights[name] = w
    if not weights:
        return _disease_for(rng, cfg, inpatient, None) if age is not None else DISEASES["支气管肺炎"]
    return DISEASES[_choice(rng, weights)]


def _finding(rng, pattern: str, modality: str, cfg: SynthConfig, avoid: set) -> Finding:
    for _ in range(20):
        side = SIDES[int(rng.integers(2))]
        if pattern == "effusion":
            zone = "lower"
        elif modality == "CT" and side == "left":
            zone = ("upper", "lower")[int(rng.integers(2))]
        else:
            zone = ("upper", "middle", "lower")[int(rng.integers(3))]
        if (side, zone) not in avoid:
            break
    pc = cfg.xray if modality == "XR" else cfg.ct
    size = float(rng.uniform(*pc.size_range))
    if pattern == "effusion":
        size = min(size, 0.3)
    return Finding(pattern, side, zone, size=round(size, 4), strength=round(float(rng.uniform(0.7, 1.3)), 4))


def _findings_for(rng, disease: Disease, modality: str, cfg: SynthConfig) -> list[Finding]:
    pattern = _choice(rng, disease.imaging)
    if pattern == "normal":
        return []
    out = [_finding(rng, pattern, modality, cfg, set())]
    if rng.random() < min(1.0, disease.two_findings * cfg.two_findings_scale):
        abnormal = {k: v for k, v in disease.imaging.items() if k != "normal"}
        second = _choice(rng, abnormal) if rng.random() < 0.7 or disease.name == "胸腔积液" else "effusion"
        if second == "effusion" and any(f.pattern == "effusion" for f in out):
            second = "patchy"
        out.append(_finding(rng, second, modality, cfg, {(f.side, f.zone) for f in out}))
    return out


def _evolve(rng, prior: list[Finding], modality: str, disease: Disease, cfg: SynthConfig
            ) -> tuple[list[Finding], list[Change]]:
    """The next exam's findings and how each changed: improved, progressed, unchanged, resolved, new."""
    if not prior:
        if rng.random() < 0.5 and any(k != "normal" for k in disease.imaging):
            f = _findings_for(rng, disease, modality, cfg)[:1] or [_finding(rng, "patchy", modality, cfg, set())]
            return f, [Change(f[0], None, "new")]
        return [], []
    state = _choice(rng, {"improved": 0.4, "resolved": 0.2, "progressed": 0.2, "unchanged": 0.1, "new": 0.1})
    current, changes = [], []
    for f in prior:
        s = "unchanged" if state == "new" else state
        if s == "resolved":
            changes.append(Change(None, f, "resolved"))
            continue
        scale = {"improved": rng.uniform(0.45, 0.6), "progressed": rng.uniform(1.5, 1.9),
                 "unchanged": rng.uniform(0.95, 1.05)}[s]
        strength = f.strength * {"improved": 0.8, "progressed": 1.15, "unchanged": 1.0}[s]
        nf = Finding(f.pattern, f.side, f.zone, size=round(min(0.45, f.size * float(scale)), 4),
                     strength=round(float(strength), 4))
        current.append(nf)
        changes.append(Change(nf, f, s))
    if state == "new":
        pattern = "patchy" if rng.random() < 0.6 else "consolidation"
        nf = _finding(rng, pattern, modality, cfg, {(f.side, f.zone) for f in prior})
        current.append(nf)
        changes.append(Change(nf, None, "new"))
    return current, changes


class _Planner:
    def __init__(self, cfg: SynthConfig) -> None:
        self.cfg = cfg
        root = np.random.default_rng(cfg.seed)
        self.institution = make_institution(root)
        self.first, self.last = _date(cfg.first_date), _date(cfg.last_date)

    def patient(self, idx: int) -> PatientPlan:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, idx, 1])
        n_visits = int(rng.integers(cfg.visits_per_patient[0], cfg.visits_per_patient[1] + 1))
        span = (self.last - self.first).days
        days = sorted(int(d) for d in rng.choice(span, size=n_visits, replace=False))
        dates = [self.first + dt.timedelta(days=d) for d in days]
        kinds = ["inpatient" if rng.random() < cfg.inpatient_share else "outpatient" for _ in dates]
        first_disease = _disease_for(rng, cfg, kinds[0] == "inpatient", None)
        lo, hi = first_disease.age
        age0 = float(rng.uniform(lo, min(hi, 17.5)))
        birth = dates[0] - dt.timedelta(days=int(age0 * 365.25))
        sex = "M" if rng.random() < 0.55 else "F"
        identity = make_identity(rng, sex, birth)
        pid = f"{(cfg.seed * 1_000_003 + idx * 37 + 12_345) % 90_000_000 + 10_000_000:08d}"
        plan = PatientPlan(idx, pid, identity)
        plan.phi.append({"where": "patient", "patient_id": pid,
                         "identifiers": [{"kind": k, "value": v} for k, v in identity.identifiers()]})
        for k, (date, kind) in enumerate(zip(dates, kinds)):
            age = (date - birth).days / 365.25
            disease = first_disease if k == 0 else _disease_for(rng, cfg, kind == "inpatient", age)
            self._visit(rng, plan, k, date, kind, disease)
        return plan

    def _visit(self, rng, plan: PatientPlan, k: int, date: dt.date, kind: str, disease: Disease) -> None:
        cfg = self.cfg
        ident = plan.identity
        vid = f"V{plan.patient_id}{k:02d}"
        start = dt.datetime.combine(date, dt.time(int(rng.integers(8, 18)), int(rng.integers(0, 60))))
        inpatient = kind == "inpatient"
        length = int(rng.integers(5, 12)) if inpatient else 0
        exams = self._exams(rng, plan, vid, start, inpatient, disease)
        if exams:
            length = max(length, (exams[-1].when.date() - date).days + 1) if inpatient else length
        end = start + dt.timedelta(days=length, hours=int(rng.integers(2, 6))) if inpatient else None
        plan.visits.append({"visit_id": vid, "patient_id": plan.patient_id, "kind": kind,
                            "start_time": start.isoformat(timespec="seconds"),
                            "end_time": end.isoformat(timespec="seconds") if end else None,
                            "department": "儿科呼吸病房" if inpatient else "儿科呼吸门诊"})
        findings0 = exams[0].findings if exams else []
        side = "左" if (findings0 and findings0[0].side == "left") else ("右" if findings0 else
                                                                         ("左" if rng.random() < 0.5 else "右"))
        xr_text = exams[0].findings_text if exams else None
        age_days = (date - ident.birth_date).days
        tasks = (["first_course", "attending_round"] + (["chief_round"] if rng.random() < cfg.chief_round_share else [])
                 if inpatient else ["outpatient"] * int(rng.integers(cfg.outpatient_records_per_visit[0],
                                                                    cfg.outpatient_records_per_visit[1] + 1)))
        case = Case.sample(rng, disease, ident, age_days, date, side, xr_text, cfg.secondary_rate)
        offsets = {"first_course": (0, 20), "attending_round": (24, 70), "chief_round": (72, 160), "outpatient": (0, 1)}
        for r, task in enumerate(tasks):
            if task == "outpatient" and r > 0:
                case = Case.sample(rng, disease, ident, age_days + 2 * r, date, side, xr_text, cfg.secondary_rate)
            rid = f"{'ZY' if inpatient else 'MZ'}{plan.patient_id}{k:02d}{r}"
            if task == "outpatient":
                sections = case.outpatient(rng)
                when = start + dt.timedelta(days=2 * r, minutes=int(rng.integers(5, 40)))
            else:
                lo, hi = offsets[task]
                when = start + dt.timedelta(hours=int(rng.integers(lo, hi + 1)))
                if task == "first_course":
                    sections = case.first_course(rng)
                else:
                    doctor = make_doctor(rng)
                    sections = case.ward_round(rng, task, doctor)
                    plan.phi.append({"where": "record", "record_id": rid, "identifiers": [
                        {"kind": "doctor_name", "value": doctor.name}]})
            planted = insert_phi(rng, sections, ident, inpatient, cfg.text_phi_rate, date)
            if planted:
                plan.phi.append({"where": "record", "record_id": rid,
                                 "identifiers": [{"kind": a, "value": b} for a, b in planted]})
            plan.records.append({"record_id": rid, "patient_id": plan.patient_id, "visit_id": vid, "task": task,
                                 "lang": "zh", "record_time": when.isoformat(timespec="seconds"), **sections})
            plan.labels.append({"record_id": rid, "task": task, "diseases": [disease.name] + case.secondary,
                                "defects": []})

    def _exams(self, rng, plan: PatientPlan, vid: str, start: dt.datetime, inpatient: bool,
               disease: Disease) -> list[ExamPlan]:
        cfg = self.cfg
        has_lesions = any(k != "normal" for k in disease.imaging)
        rate = (max(cfg.imaging_rate_pneumonia, 0.95) if inpatient else cfg.imaging_rate_pneumonia) \
            if has_lesions else cfg.imaging_rate_other
        force = plan.index < 2 and not any(e for e in plan.exams)   # a tiny hospital still gets XR and CT
        if not force and rng.random() >= rate:
            return []
        modality = "CT" if rng.random() < cfg.ct_share else "XR"
        if force:
            modality = "XR" if plan.index == 0 else "CT"
        n_follow = 0
        if inpatient and has_lesions and rng.random() < cfg.followup_share:
            n_follow = int(rng.integers(cfg.followups[0], cfg.followups[1] + 1))
        exams: list[ExamPlan] = []
        when = start + dt.timedelta(hours=int(rng.integers(1, 20)))
        findings = _findings_for(rng, disease, modality, cfg)
        changes = None
        for j in range(1 + n_follow):
            if j > 0:
                when = when + dt.timedelta(days=int(rng.integers(3, 8)), hours=int(rng.integers(-3, 4)))
                findings, changes = _evolve(rng, exams[-1].findings, modality, disease, cfg)
            exams.append(self._exam(rng, plan, vid, j, modality, when, findings, changes,
                                    exams[-1] if exams else None))
        plan.exams.extend(exams)
        return exams

    def _exam(self, rng, plan: PatientPlan, vid: str, j: int, modality: str, when: dt.datetime,
              findings: list[Finding], changes: list[Change] | None, prior: ExamPlan | None) -> ExamPlan:
        cfg = self.cfg
        ident = plan.identity
        exam_id = f"{'DR' if modality == 'XR' else 'CT'}{when:%y%m%d}{plan.patient_id[-5:]}{vid[-2:]}{j}"
        render_seed = int(rng.integers(2**31))
        age = (when.date() - ident.birth_date).days / 365.25
        if modality == "XR":
            vendor = int(rng.integers(len(XR_VENDORS)))
            mono1 = rng.random() < min(1.0, XR_VENDORS[vendor][4] * cfg.monochrome1_scale)
            views = ("frontal", "lateral") if rng.random() < cfg.lateral_share else ("frontal",)
            burned = ""
            if rng.random() < cfg.burned_in_share:
                burned = "flagged" if rng.random() < 0.5 else "unflagged"
            spec = XrayExamSpec(exam_id, findings, views, vendor, bool(mono1), _choice(rng, cfg.view_tag_shares),
                                "AP" if age < 4 or rng.random() < 0.3 else "PA", render_seed,
                                int(rng.integers(3)), bool(rng.random() < 0.6), burned,
                                jitter=int(rng.integers(0, 3)) if j else 0)
            description = "胸部正位" + ("+侧位" if len(views) > 1 else "")
            text, imp = write_report(rng, "XR", findings, changes, prior.when.date().isoformat() if prior else None,
                                     views=len(views))
        else:
            contrast = bool(rng.random() < cfg.ct_contrast_share)
            extra = (0, 0)
            if contrast and rng.random() < cfg.ct_z_mismatch_share:
                extra = (int(rng.integers(-2, 3)), int(rng.integers(-2, 3)))
                if extra == (0, 0):
                    extra = (1, 0)
            soft, thin = bool(rng.random() < cfg.ct_soft_share), bool(rng.random() < cfg.ct_thin_share)
            coronal = bool(rng.random() < cfg.ct_coronal_share)
            scout = cfg.ct_localizer_share >= 1.0 or bool(rng.random() < cfg.ct_localizer_share)
            n_series = 1 + int(scout) + int(soft) + int(thin) + int(contrast) + int(coronal)   # + NC lung
            order = tuple(int(x) for x in rng.permutation(n_series) + 1) if rng.random() < 0.3 else ()
            spec = CtExamSpec(exam_id, findings, int(rng.integers(len(CT_VENDORS))), render_seed, soft, thin,
                              contrast, extra, coronal, int(rng.integers(2)), order, localizer=scout)
            description = "胸部CT平扫" + ("+增强" if contrast else "")
            text, imp = write_report(rng, "CT", findings, changes, prior.when.date().isoformat() if prior else None,
                                     contrast=contrast)
        ctx = StudyContext(cfg.seed, exam_id, plan.patient_id, ident, when,
                           self.institution if rng.random() < 0.9 else make_institution(rng),
                           make_doctor(rng), make_doctor(rng), exam_id, int(rng.integers(3)),
                           bool(rng.random() < cfg.dicom_name_in_description), description)
        return ExamPlan(exam_id, vid, modality, when, findings, changes, prior.exam_id if prior else None, text, imp,
                        spec, ctx, age, [cfg.seed, plan.index, int(vid[-2:]), 2])


def _render(job: tuple[ExamPlan, SynthConfig, str]) -> tuple[str, list[str], dict]:
    exam, cfg, root = job
    rng = np.random.default_rng(exam.anatomy_seed)
    if exam.modality == "XR":
        anatomy = sample_xr_anatomy(rng, exam.age_years, cfg.xray)
        files, truth = write_xray_exam(exam.spec, exam.ctx, anatomy, cfg.xray)
    else:
        anatomy = sample_ct_anatomy(rng, exam.age_years, cfg.ct)
        files, truth = write_ct_exam(exam.spec, exam.ctx, anatomy, cfg.ct)
    rel_dir = f"images/{exam.exam_id}"
    for name, data in files:
        path = Path(root) / rel_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return exam.exam_id, [f"{rel_dir}/{n}" for n, _ in files], truth


def _plant_defects(cfg: SynthConfig, records: list[dict], labels: dict[str, dict]) -> None:
    """Empty one output section of round(share * n) records and make as many others over-long (at least one
    each when the share is above zero), chosen by the seed."""
    rng = np.random.default_rng([cfg.seed, 98])
    n = len(records)
    counts = [max(1, round(share * n)) if share > 0 and n else 0
              for share in (cfg.missing_output_share, cfg.overlong_share)]
    order = rng.permutation(n)
    missing, overlong = order[:counts[0]], order[counts[0]:counts[0] + counts[1]]
    for i in sorted(int(i) for i in missing):
        rec = records[i]
        outs = TASKS[rec["task"]].outputs
        gone = outs[int(rng.integers(len(outs)))]
        rec[gone] = None
        labels[rec["record_id"]]["defects"].append(f"missing_output:{gone}")
    for i in sorted(int(i) for i in overlong):
        rec = records[i]
        make_overlong(rng, rec)
        labels[rec["record_id"]]["defects"].append("overlong")


def _near_duplicates(cfg: SynthConfig, records: list[dict], labels: dict[str, dict]) -> list[dict]:
    """Append planted copies of outpatient records; returns the ground-truth rows."""
    rng = np.random.default_rng([cfg.seed, 99])
    pool = [r for r in records if r["task"] == "outpatient" and not labels[r["record_id"]]["defects"]]
    truth = []
    n_dup = int(round(len(pool) * cfg.duplicate_share))
    n_neg = int(round(len(pool) * cfg.hard_negative_share))
    if not pool:
        return truth
    chosen = rng.choice(len(pool), size=min(len(pool), n_dup + n_neg), replace=False)
    for i, idx in enumerate(sorted(int(c) for c in chosen)):
        orig = pool[idx]
        kind = "duplicate" if i < n_dup else "hard_negative"
        band = (0.85, 1.0) if kind == "duplicate" else (0.6, 0.84)
        made = mutate(rng, orig, OUTPATIENT_KEYS, band)
        if made is None:
            continue
        copy, j = made
        rid = orig["record_id"] + ("D" if kind == "duplicate" else "N")
        copy = {**copy, "record_id": rid}
        records.append(copy)
        lab = labels[orig["record_id"]]
        labels[rid] = {"record_id": rid, "task": "outpatient", "diseases": lab["diseases"], "defects": []}
        truth.append({"original": orig["record_id"], "copy": rid, "kind": kind, "jaccard": round(j, 6)})
    return truth


def synthesize(cfg: SynthConfig, out: Path, truth_dir: Path | None = None, overwrite: bool = False,
               progress: bool = True) -> dict:
    """Write the export to ``out`` and the ground truth to ``truth_dir``; returns the summary counts."""
    out = Path(out)
    truth_dir = Path(truth_dir) if truth_dir else out.with_name(out.name + ".truth")
    for target in (out, truth_dir):
        if target.exists() and any(target.iterdir()):
            if not overwrite:
                from ..common.errors import P2MedError
                raise P2MedError(f"{target} exists and is not empty; pass --overwrite to replace it")
    tmp = out.with_name(f".{out.name}.partial")
    tmp_truth = truth_dir.with_name(f".{truth_dir.name}.partial")
    for t in (tmp, tmp_truth):
        shutil.rmtree(t, ignore_errors=True)
        t.mkdir(parents=True)

    planner = _Planner(cfg)
    plans = [planner.patient(i) for i in tqdm(range(cfg.patients), desc="plan patients", disable=not progress)]
    patients = [{"patient_id": p.patient_id, "sex": p.identity.sex, "birth_date": p.identity.birth_date.isoformat(),
                 "name": p.identity.patient.name,
                 "guardian_names": f"{p.identity.mother.name}|{p.identity.father.name}",
                 "id_number": p.identity.id_number, "phone": "|".join(p.identity.phones),
                 "address": p.identity.address,
                 "medical_record_numbers": f"{p.identity.outpatient_no}|{p.identity.inpatient_no}|{p.identity.record_no}"}
                for p in plans]
    visits = [v for p in plans for v in p.visits]
    records = [r for p in plans for r in p.records]
    labels = {lab["record_id"]: lab for p in plans for lab in p.labels}
    _plant_defects(cfg, records, labels)
    dup_truth = _near_duplicates(cfg, records, labels)
    exams_all = [e for p in plans for e in p.exams]
    _unique([e.exam_id for e in exams_all], "exam")
    _unique([r["record_id"] for r in records], "record")

    jobs = [(e, cfg, str(tmp)) for e in exams_all]
    rendered: dict[str, tuple[list[str], dict]] = {}
    bar = tqdm(total=len(jobs), desc="render exams", disable=not progress)
    if cfg.workers > 1 and len(jobs) > 1:
        with mp.get_context("spawn" if os.name != "posix" else "fork").Pool(cfg.workers) as pool:
            for eid, files, truth in pool.imap_unordered(_render, jobs, chunksize=1):
                rendered[eid] = (files, truth)
                bar.update()
    else:
        for job in jobs:
            eid, files, truth = _render(job)
            rendered[eid] = (files, truth)
            bar.update()
    bar.close()

    exams = []
    findings_truth = []
    phi_rows = [row for p in plans for row in p.phi]
    for p in plans:
        for e in p.exams:
            files, truth = rendered[e.exam_id]
            exams.append({"exam_id": e.exam_id, "patient_id": p.patient_id, "visit_id": e.visit_id,
                          "modality": e.modality, "exam_time": e.when.isoformat(timespec="seconds"),
                          "files": [f"images/{e.exam_id}"], "findings": e.findings_text, "impression": e.impression,
                          "lang": "zh", "report_origin": "radiologist"})
            findings_truth.append({
                "exam_id": e.exam_id, "patient_id": p.patient_id, "modality": e.modality,
                "exam_time": e.when.isoformat(timespec="seconds"), "prior_exam_id": e.prior_exam_id,
                "findings": [f.to_json() for f in e.findings],
                "changes": None if e.changes is None else [
                    {"state": c.state, "finding": c.finding.to_json() if c.finding else None,
                     "prior": c.prior.to_json() if c.prior else None} for c in e.changes],
                "n_files": len(files), **truth})
            phi_rows.append({"where": "dicom", "exam_id": e.exam_id, "files": len(files),
                             "identifiers": [{"kind": k, "value": v} for k, v in e.ctx.planted()]})

    write_export(tmp, {"patients": patients, "visits": visits, "exams": exams,
                       "records": sorted(records, key=lambda r: r["record_id"])},
                 name=f"synthetic-hospital-seed{cfg.seed}", source="p2med synth",
                 notes="Synthetic pediatric hospital; every name, number and image is generated.")
    params = {"config": to_dict(cfg)}
    params["config"].pop("workers")
    counts = summary_counts(exams, records, labels)
    write_manifest(tmp, "synth", params, counts)

    write_jsonl(tmp_truth / "findings.jsonl", findings_truth)
    write_jsonl(tmp_truth / "labels.jsonl", [labels[k] for k in sorted(labels)])
    write_jsonl(tmp_truth / "duplicates.jsonl", dup_truth)
    write_jsonl(tmp_truth / "phi.jsonl", phi_rows)
    write_json(tmp_truth / "diagnosis_terms.json", diagnosis_terms())
    write_text(tmp_truth / "README.md", TRUTH_README)
    write_manifest(tmp_truth, "synth-truth", params, {"duplicates": len(dup_truth)})

    for t, final in ((tmp, out), (tmp_truth, truth_dir)):
        if final.exists():
            shutil.rmtree(final)
        os.replace(t, final)
    return counts


def _unique(ids: list[str], what: str) -> None:
    dup = [k for k, n in Counter(ids).items() if n > 1]
    if dup:
        raise RuntimeError(f"synthetic {what} ids collide ({len(dup)}); change the seed")


def summary_counts(exams: list[dict], records: list[dict], labels: dict[str, dict]) -> dict:
    by_task = Counter(r["task"] for r in records)
    diseases = Counter(labels[r["record_id"]]["diseases"][0] for r in records)
    return {"exams": dict(Counter(e["modality"] for e in exams)), "records": dict(sorted(by_task.items())),
            "diseases": dict(sorted(diseases.items(), key=lambda kv: -kv[1])),
            "patients": len({e["patient_id"] for e in exams} | {r["patient_id"] for r in records})}
