"""`p2med import dicom-folder` on the real TCIA CT series and the DX radiograph: exams by StudyInstanceUID, every
file ledgered, reports empty and counted, no UID or patient id printed or in export ids and paths; a broken
folder (truncated file, text named .dcm, PT modality, CR, no preamble, a duplicate instance) does not stop it."""

from __future__ import annotations

import shutil

import pydicom
import pytest

from conftest import shared_data
from importer_checks import check_accounting, check_manifest, run_import, table

from p2med.common.atomic import sha256_file


def _headers(folder) -> dict[str, pydicom.Dataset]:
    return {p.relative_to(folder).as_posix(): pydicom.dcmread(p, stop_before_pixels=True)
            for p in sorted(folder.rglob("*.dcm"))}


def _identifiers(datasets) -> set[str]:
    return {str(ds.get(k)) for ds in datasets
            for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "PatientID", "PatientName")
            if ds.get(k)}


@pytest.mark.parametrize("folder", ["lung_pet_ct_dx_sample", "dicom_cxr_dx_sample"])
def test_shared_dicom_folders(tmp_path, folder):
    src = shared_data(folder)
    out = tmp_path / "out"
    result, printed = run_import("dicom-folder", src, out)
    entries = check_accounting(out, src)
    headers = _headers(src)
    studies = {ds.StudyInstanceUID for ds in headers.values()}
    exams = table(out, "exams")
    assert len(exams) == len(studies)
    expected_modality = {"CT": "CT", "DX": "XR", "CR": "XR"}
    assert {e["modality"] for e in exams} == {expected_modality[ds.Modality] for ds in headers.values()}
    assert all(entries[rel]["status"] == "used" for rel in headers)
    assert all(e["status"] == "excluded" for s, e in entries.items() if s not in headers)
    copied = sorted(p for e in exams for p in (out / e["files"][0]).rglob("*") if p.is_file())
    assert sorted(map(sha256_file, copied)) == sorted(sha256_file(src / rel) for rel in headers)
    counts = check_manifest(out)["counts"]
    assert counts["exams_without_report"] == len(exams) == result.counts["exams_with_images"]
    assert counts["image_files"] == len(headers)
    # no UID, patient id or name in what was printed, nor in the export's tables, paths and ledger reasons
    exported = "\n".join(printed) + "".join((out / t).read_text() for t in ("exams.jsonl", "patients.jsonl"))
    exported += "\n".join(p.relative_to(out).as_posix() for p in out.rglob("*"))
    exported += "\n".join(e["reason"] or "" for e in entries.values())
    for ident in _identifiers(headers.values()):
        assert ident not in exported


def test_broken_folder_is_ledgered_not_crashed(tmp_path):
    ct, dx = shared_data("lung_pet_ct_dx_sample"), shared_data("dicom_cxr_dx_sample")
    work = tmp_path / "in"
    (work / "ct").mkdir(parents=True)
    slices = sorted((ct / "Lung_Dx-A0001" / "series_2_5mm").glob("*.dcm"))[:3]
    for p in slices:
        shutil.copy(p, work / "ct" / p.name)
    shutil.copy(slices[0], work / "ct" / "again.dcm")  # the same SOP instance twice
    (work / "ct" / "cut.dcm").write_bytes(slices[1].read_bytes()[:700])  # truncated inside the header
    (work / "ct" / "notes.dcm").write_text("not a DICOM file", encoding="utf-8")
    uid_named = pydicom.uid.generate_uid(entropy_srcs=["p2med test: a file named by its UID"])
    (work / "ct" / f"{uid_named}.dcm").write_bytes(slices[0].read_bytes()[:200])  # named by a UID, damaged
    (work / "README.txt").write_text("exported from PACS", encoding="utf-8")
    pet = pydicom.dcmread(slices[2])
    pet.Modality = "PT"
    pet.save_as(work / "pet.dcm")
    cr = pydicom.dcmread(next(dx.glob("*.dcm")))
    cr.Modality = "CR"
    cr.save_as(work / "cr.dcm")
    bare = pydicom.dcmread(slices[2])
    bare.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["p2med test: no preamble"])
    bare.preamble = None
    bare.save_as(work / "ct" / "IM000009", enforce_file_format=False)  # no preamble, no suffix
    out = tmp_path / "out"
    _, printed = run_import("dicom-folder", work, out)
    entries = check_accounting(out, work)
    reason = {s: (e["reason"] or "used").split(":")[0] for s, e in entries.items()}
    damaged = {"ct/cut.dcm", "ct/notes.dcm", f"ct/{uid_named}.dcm"}  # cut inside the header; text named .dcm
    assert {s: r for s, r in reason.items() if s not in damaged} == {
        **{f"ct/{p.name}": "used" for p in slices}, "ct/again.dcm": "duplicate-instance", "README.txt": "not-dicom",
        "pet.dcm": "modality", "cr.dcm": "used", "ct/IM000009": "used"}
    assert all(entries[s]["status"] == "quarantined" for s in damaged)
    assert reason["ct/notes.dcm"] == "not-dicom"
    for source in ("ct/again.dcm", "ct/cut.dcm", "ct/notes.dcm"):
        assert sum(line.startswith(source + ":") for line in printed) == 1
    exams = table(out, "exams")
    assert sorted(e["modality"] for e in exams) == ["CT", "XR"]
    ct_exam = next(e for e in exams if e["modality"] == "CT")
    assert len([p for p in (out / ct_exam["files"][0]).rglob("*") if p.is_file()]) == len(slices) + 1
    idents = _identifiers([pydicom.dcmread(p, stop_before_pixels=True) for p in slices] + [cr, bare])
    assert all(ident not in "\n".join(printed) for ident in idents | {uid_named})
    assert any(line.startswith("ct/<UID>.dcm:") and line.endswith("-> quarantined") for line in printed)
