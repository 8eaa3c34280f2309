"""``p2med deid`` on the synthetic hospital, end to end through the CLI: the source stays byte-identical,
``--verify`` finds nothing, every identifier of the ground truth is gone (checked directly, not through our
verifier), ages at exam and intervals between exams are unchanged while every date moved, the ledger accounts
for every input once, no log line carries an identifier or the key, and the result is a valid export."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import ahocorasick
import pydicom
import pytest

from p2med.cli import main
from p2med.deid.config import DeidConfig
from p2med.deid.keys import DeidKey
from p2med.deid.verify import verify
from p2med.export.validate import validate

ROOT = Path(__file__).resolve().parents[1]
DATE_KINDS = {"birth_date", "date", "StudyDate", "PatientBirthDate"}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _header(path: Path) -> bytes:
    """A DICOM file's bytes before its pixel data (the whole file for anything else)."""
    raw = path.read_bytes()
    cut = raw.rfind(b"\xe0\x7f\x10\x00") if path.suffix == ".dcm" else -1
    return raw[:cut] if cut > 0 else raw


@pytest.fixture(scope="module")
def run(small_hospital, tmp_path_factory):
    export, truth = small_hospital
    work = tmp_path_factory.mktemp("deid")
    key_file = work / "deid.key"
    key_file.write_text(os.urandom(32).hex() + "\n")
    key_file.chmod(0o600)
    before = _hashes(export)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = work / "deid"
    proc = subprocess.run([sys.executable, "-m", "p2med.cli", "-v", "deid", str(export), "--out", str(out),
                           "--key-file", str(key_file)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"export": export, "truth": truth, "out": out, "key": DeidKey.load(key_file),
            "key_text": key_file.read_text().strip(), "logs": proc.stdout + proc.stderr, "before": before}


@pytest.fixture(scope="module")
def truth_phi(run) -> list[dict]:
    return _jsonl(run["truth"] / "phi.jsonl")


@pytest.fixture(scope="module")
def source_headers(run) -> dict[str, pydicom.Dataset]:
    """Source SOPInstanceUID -> header, for every source DICOM file."""
    out = {}
    for p in sorted((run["export"] / "images").rglob("*")):
        if p.is_file():
            ds = pydicom.dcmread(p, stop_before_pixels=True)
            out[ds.SOPInstanceUID] = ds
    return out


def test_source_is_byte_identical(run):
    assert _hashes(run["export"]) == run["before"]


def test_verify_finds_no_leak(run, capsys):
    code = main(["deid", "--verify", str(run["export"]), str(run["out"]), "--key-file", str(_key_path(run)),
                 "--json"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and report["ok"] and report["dates_checked"], report
    assert sum(report["hits"].values()) == 0
    assert report["scanned"]["dicom_files"] > 1000 and report["scanned"]["table_rows"] > 50
    assert report["identifiers"]["uid"] + report["identifiers"]["path"] > 1000     # UIDs (some as file names)
    assert report["identifiers"]["person"] > 0


def _key_path(run) -> Path:
    return run["out"].parent / "deid.key"


def test_every_truth_identifier_is_gone(run, truth_phi):
    """The ground truth's planted identifiers against the raw bytes of every output file (DICOM up to the
    pixel data), independent of our own verifier; dates are checked per object in the next tests."""
    needles = {}
    for row in truth_phi:
        for item in row["identifiers"]:
            if item["kind"] not in DATE_KINDS:
                needles[item["value"]] = item["kind"]
    needles[run["key_text"]] = "key"
    auto = ahocorasick.Automaton()
    for value, kind in needles.items():
        auto.add_word(value.encode("utf-8").decode("latin-1"), (value, kind))
    auto.make_automaton()
    leaks = []
    for path in sorted(run["out"].rglob("*")):
        if not path.is_file():
            continue
        text = _header(path).decode("latin-1")
        for end, (value, kind) in auto.iter(text):
            start = end - len(value.encode("utf-8")) + 1
            ascii_edge = value[0].isascii() and value[0].isalnum()
            if ascii_edge and start > 0 and text[start - 1].isascii() and text[start - 1].isalnum():
                continue
            if value[-1].isascii() and value[-1].isalnum() and end + 1 < len(text) and text[end + 1].isalnum():
                continue
            leaks.append(f"{kind} in {path.relative_to(run['out'])}")
    assert not leaks, leaks[:20]
    assert len(needles) > 100


def test_planted_text_dates_moved_by_the_patients_shift(run, truth_phi):
    key = run["key"]
    cfg = DeidConfig()
    source = {r["record_id"]: r for r in _jsonl(run["export"] / "records.jsonl")}
    out = {r["record_id"]: r for r in _jsonl(run["out"] / "records.jsonl")}
    checked = 0
    for row in truth_phi:
        if row["where"] != "record":
            continue
        for item in row["identifiers"]:
            if item["kind"] != "date":
                continue
            rec = out[key.pseudonym("record", row["record_id"])]
            shift = key.shift_days(source[row["record_id"]]["patient_id"], cfg.shift_min_days, cfg.shift_max_days)
            text = "".join(v for v in rec.values() if isinstance(v, str))
            value = item["value"]
            if "年" in value:
                y, rest = value.split("年")
                m, d = rest.rstrip("日").split("月")
                moved = dt.date(int(y), int(m), int(d)) + dt.timedelta(days=shift)
                expected = f"{moved.year}年{moved.month}月{moved.day}日"
            else:
                expected = (dt.date.fromisoformat(value) + dt.timedelta(days=shift)).isoformat()
            assert value not in text and expected in text
            checked += 1
    assert checked >= 1


def test_ages_and_intervals_are_unchanged_and_every_date_moved(run, source_headers):
    key, cfg = run["key"], DeidConfig()
    src_patients = {p["patient_id"]: p for p in _jsonl(run["export"] / "patients.jsonl")}
    out_patients = {p["patient_id"]: p for p in _jsonl(run["out"] / "patients.jsonl")}
    shifts = {}
    for pid, p in src_patients.items():
        q = out_patients[key.pseudonym("patient", pid)]
        days = (dt.date.fromisoformat(q["birth_date"]) - dt.date.fromisoformat(p["birth_date"])).days
        assert days == key.shift_days(pid, cfg.shift_min_days, cfg.shift_max_days) and days != 0
        assert set(q) <= {"patient_id", "sex", "birth_date"}          # the identifying columns are gone
        shifts[key.pseudonym("patient", pid)] = days
    out_exams = {e["exam_id"]: e for e in _jsonl(run["out"] / "exams.jsonl")}
    for e in _jsonl(run["export"] / "exams.jsonl"):
        o = out_exams[key.pseudonym("exam", e["exam_id"])]
        t0, t1 = dt.datetime.fromisoformat(e["exam_time"]), dt.datetime.fromisoformat(o["exam_time"])
        assert t1 - t0 == dt.timedelta(days=shifts[o["patient_id"]])
        age0 = t0.date() - dt.date.fromisoformat(src_patients[e["patient_id"]]["birth_date"])
        age1 = t1.date() - dt.date.fromisoformat(out_patients[o["patient_id"]]["birth_date"])
        assert age0 == age1
    # the DICOM side: same shift as the tables, ages from the headers' own dates, times of day kept
    by_uid = {key.uid(uid): ds for uid, ds in source_headers.items()}
    per_patient = defaultdict(set)
    n = 0
    for path in sorted((run["out"] / "images").rglob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        src = by_uid[ds.SOPInstanceUID]
        d = lambda v: dt.datetime.strptime(str(v), "%Y%m%d").date()   # noqa: E731
        moved = (d(ds.StudyDate) - d(src.StudyDate)).days
        per_patient[ds.PatientID].add(moved)
        assert d(ds.StudyDate) - d(ds.PatientBirthDate) == d(src.StudyDate) - d(src.PatientBirthDate)
        for name in ("SeriesDate", "AcquisitionDate", "ContentDate"):
            if name in src:
                assert (d(ds[name].value) - d(src[name].value)).days == moved
        assert ds.StudyTime == src.StudyTime and "PatientAge" not in ds
        n += 1
    assert n > 1000
    assert all(len(v) == 1 and v == {shifts[pid]} for pid, v in per_patient.items())


def test_ledger_accounts_for_every_input_once(run, source_headers, truth_phi):
    ledger = _jsonl(run["out"] / "ledger.jsonl")
    sources = [r["source"] for r in ledger]
    assert len(sources) == len(set(sources))
    images = [r for r in ledger if r["source"].startswith("images/")]
    assert len(images) == len(source_headers)
    flagged_yes = {uid for uid, ds in source_headers.items() if str(ds.get("BurnedInAnnotation", "")) == "YES"}
    quarantined = [r for r in images if r["status"] == "quarantined"]
    assert len(quarantined) == len(flagged_yes) and all(r["reason"].startswith("burned_in_annotation")
                                                          for r in quarantined)
    for r in images:
        assert (run["out"] / r["source"]).is_file() == (r["status"] == "used")
    # text burned in without the tag: found from pixels and flagged for review
    findings = _jsonl(run["truth"] / "findings.jsonl")
    unflagged_text = set()
    for f in findings:
        for v in f.get("views", []):
            if v.get("burned_in_box"):
                ds = pydicom.dcmread(run["export"] / "images" / f["exam_id"] / v["file"], stop_before_pixels=True)
                if ds.SOPInstanceUID not in flagged_yes:
                    unflagged_text.add(run["key"].uid(ds.SOPInstanceUID))
    reviewed = {pydicom.dcmread(run["out"] / r["source"], stop_before_pixels=True).SOPInstanceUID
                for r in images if r.get("review")}
    assert unflagged_text <= reviewed and len(reviewed) <= len(unflagged_text) + 1
    for table in ("patients", "visits", "exams", "records"):
        n_source = len(_jsonl(run["export"] / f"{table}.jsonl"))
        assert sum(r["source"].startswith(f"{table}/") for r in ledger) == n_source
    manifest = json.loads((run["out"] / "manifest.json").read_text())
    assert {f["path"] for f in manifest["files"]} == {p.relative_to(run["out"]).as_posix()
                                                      for p in run["out"].rglob("*") if p.is_file()} - {"manifest.json"}


def test_output_is_a_valid_export_with_consistent_pseudonyms(run):
    report = validate(run["out"])
    assert report.ok, [str(p) for p in report.errors][:10]
    exams = _jsonl(run["out"] / "exams.jsonl")
    assert all(e["exam_id"].startswith("E") and all(f.startswith(f"images/{e['exam_id']}") for f in e["files"])
               for e in exams)


def test_no_identifier_or_key_in_any_log_line(run, truth_phi):
    logs = run["logs"]
    assert "de-identify images" in logs and "INFO p2med.deid" in logs      # progress and logging were captured
    values = {i["value"] for row in truth_phi for i in row["identifiers"]}
    for row in _jsonl(run["export"] / "exams.jsonl"):
        values |= {row["exam_id"], row["patient_id"], row["visit_id"]}
    leaked = sorted(v for v in values if v in logs)
    assert not leaked, f"{len(leaked)} identifiers in the logs"
    assert run["key_text"] not in logs


@pytest.fixture(scope="module")
def mini_export(small_hospital, tmp_path_factory):
    """One patient of the small hospital with an X-ray exam, plus a damaged image and a stray file."""
    export, _ = small_hospital
    exams = _jsonl(export / "exams.jsonl")
    pid = next(e["patient_id"] for e in exams if e["modality"] == "XR")
    root = tmp_path_factory.mktemp("mini") / "export"
    root.mkdir()
    for table in ("patients", "visits", "exams", "records"):
        rows = [r for r in _jsonl(export / f"{table}.jsonl") if r["patient_id"] == pid]
        _write_jsonl(root / f"{table}.jsonl", rows)
        if table == "exams":
            for r in rows:
                for entry in r["files"]:
                    shutil.copytree(export / entry, root / entry)
    first = next(r for r in _jsonl(root / "exams.jsonl"))
    (root / first["files"][0] / "broken.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00")
    (root / "notes.txt").write_text("exported for 患儿 research\n", encoding="utf-8")
    shutil.copy(export / "export.json", root / "export.json")
    return root


def test_verify_catches_planted_leaks(mini_export, tmp_path):
    from p2med.deid.export import deidentify_export

    key = DeidKey(b"v" * 40)
    out = tmp_path / "out"
    deidentify_export(mini_export, out, key, DeidConfig(workers=1), progress=False)
    assert verify(mini_export, out, key, workers=1).ok
    source_patient = _jsonl(mini_export / "patients.jsonl")[0]
    records = _jsonl(out / "records.jsonl")
    records[0]["present_illness"] += f"患儿{source_patient['name']}。身份证号码{source_patient['id_number']}。"
    _write_jsonl(out / "records.jsonl", records)
    dicom = next(out.rglob("*.dcm"))
    ds = pydicom.dcmread(dicom)
    ds.private_block(0x0029, "LEAKY VENDOR", create=True).add_new(0x01, "LO", source_patient["phone"].split("|")[0])
    ds.save_as(dicom, enforce_file_format=True)
    report = verify(mini_export, out, key, workers=1)
    assert not report.ok
    assert report.hits["name"] >= 1 and report.hits["pattern:id_number"] >= 1 and report.hits["phone"] >= 1
    assert report.dicom_checks["private_tags"] >= 1
    assert all(source_patient["name"] not in w for w in report.where)     # hits name the place, not the value


def test_a_two_character_name_in_another_patients_text_is_a_collision_not_a_leak(small_hospital, tmp_path):
    """Found at 2,800 patients: a patient named 叶可, and "右肺上叶可见" in other patients' reports."""
    from p2med.deid.export import deidentify_export

    export, _ = small_hospital
    exams = _jsonl(export / "exams.jsonl")
    with_text = [e for e in exams if e.get("findings")]
    a = with_text[0]["patient_id"]
    b = next(e["patient_id"] for e in with_text if e["patient_id"] != a)
    src = tmp_path / "src"
    src.mkdir()
    for table in ("patients", "visits", "exams", "records"):
        rows = [r for r in _jsonl(export / f"{table}.jsonl") if r["patient_id"] in (a, b)]
        for r in rows:
            if table == "patients" and r["patient_id"] == a:
                r["name"] = "叶可"
            if table == "exams" and r["patient_id"] == b and r.get("findings"):
                r["findings"] = "右肺上叶可见斑片影。" + r["findings"]
            if table == "exams":
                for entry in r["files"]:
                    shutil.copytree(export / entry, src / entry)
        _write_jsonl(src / f"{table}.jsonl", rows)
    shutil.copy(export / "export.json", src / "export.json")
    key, out = DeidKey(b"y" * 40), tmp_path / "out"
    deidentify_export(src, out, key, DeidConfig(workers=1), progress=False)

    report = verify(src, out, key, workers=1)
    assert report.ok and report.collisions["name"] >= 1, report.where
    assert any("exams.jsonl" in w and "findings" in w for w in report.collision_where)
    assert not verify(src, out, workers=1).ok       # without the key no output is tied to a patient: strict

    rows = _jsonl(out / "exams.jsonl")               # the name in its own patient's output is a leak
    own = next(r for r in rows if r["patient_id"] == key.pseudonym("patient", a))
    own["findings"] = "患儿叶可。" + (own.get("findings") or "")
    _write_jsonl(out / "exams.jsonl", rows)
    report = verify(src, out, key, workers=1)
    assert not report.ok and report.hits["name"] >= 1


def test_a_time_equal_to_a_short_source_id_is_not_a_leak(mini_export, tmp_path):
    """Synthetic StudyIDs are the accession's last 6 digits; one like "192000" equals the time 19:20:00."""
    from p2med.deid.export import deidentify_export

    src = tmp_path / "src"
    shutil.copytree(mini_export, src)
    exam = _jsonl(src / "exams.jsonl")[0]
    path = next(p for p in sorted((src / exam["files"][0]).rglob("*")) if p.is_file() and p.name != "broken.dcm")
    ds = pydicom.dcmread(path)
    ds.StudyID = str(ds.StudyTime)
    ds.save_as(path, enforce_file_format=True)
    key = DeidKey(b"t" * 40)
    out = tmp_path / "out"
    deidentify_export(src, out, key, DeidConfig(workers=1), progress=False)
    report = verify(src, out, key, workers=1)
    assert report.identifiers["number"] >= 1 and report.ok, report.where[:5]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["counts"]["dicom_keep"] = int(ds.StudyID)          # a count equal to a StudyID: a coincidence
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert verify(src, out, key, workers=1).ok
    manifest["note"] = f"study {ds.StudyID}"                     # the same digits as text: reported
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert not verify(src, out, key, workers=1).ok


def test_output_is_deterministic_whatever_the_path_and_resumes_after_a_crash(mini_export, tmp_path, monkeypatch,
                                                                               caplog):
    from p2med.deid import export as deid_export

    key, cfg = DeidKey(b"r" * 40), DeidConfig(workers=1)

    def manifest_files(out):
        return json.loads((out / "manifest.json").read_text())["files"]

    deid_export.deidentify_export(mini_export, tmp_path / "a", key, cfg, progress=False)
    deid_export.deidentify_export(mini_export, tmp_path / "elsewhere" / "b", key, cfg, progress=False)
    assert manifest_files(tmp_path / "a") == manifest_files(tmp_path / "elsewhere" / "b")
    ledger = {r["source"]: r for r in _jsonl(tmp_path / "a" / "ledger.jsonl")}
    assert any(r["status"] == "quarantined" and r["reason"].startswith(("unreadable", "unprocessable", "no_image"))
               for r in ledger.values())
    assert any(s.startswith("unreferenced/") and r["status"] == "excluded" for s, r in ledger.items())

    real, calls = deid_export.process_file, []

    def crash_after_one(job):
        if calls:
            raise RuntimeError("simulated crash")
        calls.append(job)
        return real(job)

    monkeypatch.setattr(deid_export, "process_file", crash_after_one)
    with pytest.raises(RuntimeError, match="simulated crash"):
        deid_export.deidentify_export(mini_export, tmp_path / "c", key, cfg, progress=False)
    assert (tmp_path / ".c.partial" / deid_export.JOURNAL).is_file() and not (tmp_path / "c").exists()
    monkeypatch.setattr(deid_export, "process_file", real)
    with caplog.at_level("INFO", logger="p2med.deid.export"):
        deid_export.deidentify_export(mini_export, tmp_path / "c", key, cfg, progress=False)
    assert "resuming: 1 of" in caplog.text
    assert manifest_files(tmp_path / "c") == manifest_files(tmp_path / "a")
