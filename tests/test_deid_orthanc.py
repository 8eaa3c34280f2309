"""Orthanc as an oracle: a real Orthanc (Debian package, unpacked with dpkg -x, never installed) runs on
127.0.0.1 with authentication; the same synthetic DICOM files go through its ``/instances/{id}/anonymize``
(PS3.15 Basic Profile) and through ours. Every tag Orthanc removes or replaces, ours removes or replaces
too, except the tags our two options govern by design: dates are shifted (times of day stay, a whole-day
shift does not move them) and descriptions are cleaned instead of dropped; for those the option's effect is
asserted instead."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import pydicom
import pytest
from conftest import shared_data
from orthanc_helpers import Orthanc, start_orthanc

from p2med.deid.burned_in import BurnedInConfig
from p2med.deid.config import DeidConfig
from p2med.deid.dates import shift_da
from p2med.deid.dicom import FileJob, PatientContext, WorkerSetup, init_worker, process_file
from p2med.deid.export import plan_export
from p2med.deid.keys import DeidKey
from p2med.deid.profile import load_profile
from p2med.deid.text import KnownIdentifiers

@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    with start_orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


def test_orthanc_refuses_requests_without_credentials(orthanc):
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(orthanc.url + "/system", timeout=10)
    assert exc.value.code == 401


def _value(elem):
    v = elem.value
    if isinstance(v, pydicom.sequence.Sequence):
        return [sorted((str(e.tag), str(e.value)) for e in item) for item in v]
    if isinstance(v, bytes):
        return v.rstrip(b"\x00 ")
    return str(v).strip() if v is not None else ""


def _compare(orthanc: Orthanc, job: FileJob, out_root: Path, missing: dict, kept_by_option: dict) -> bool:
    """De-identify ``job`` with ours and Orthanc; record tags Orthanc changes that ours keeps. False when ours
    quarantined the file (BurnedInAnnotation YES)."""
    source = pydicom.dcmread(job.source)
    result = process_file(job)
    if str(source.get("BurnedInAnnotation", "")) == "YES":
        assert result.status == "quarantined"               # ours does not release it at all
        return False
    assert result.status == "used", result
    ours = pydicom.dcmread(out_root / job.out_rel)
    uploaded = json.loads(orthanc.request("/instances", Path(job.source).read_bytes()))
    theirs = pydicom.dcmread(io.BytesIO(orthanc.request(f"/instances/{uploaded['ID']}/anonymize", b"{}",
                                                        method="POST")))
    assert theirs.PatientIdentityRemoved == "YES"
    profile = load_profile()
    for elem in source:
        if elem.tag == 0x7FE00010:
            continue
        o = theirs.get(elem.tag)
        if o is not None and _value(o) == _value(elem):
            continue                                        # Orthanc keeps it
        u = ours.get(elem.tag)
        if u is None or _value(u) != _value(elem):
            continue                                        # ours removes or replaces it as well
        rule = profile.rule(int(elem.tag))
        name = elem.keyword or str(elem.tag)
        if rule is not None and rule.option == "dates":
            # Retain Longitudinal Temporal Information: a whole-day shift leaves times of day as they are
            assert elem.VR == "TM" or not str(elem.value).strip(), name
            kept_by_option[name] = "dates"
        elif rule is not None and rule.option == "descriptors":
            # Clean Descriptors: kept because nothing identifying was in it
            assert not any(n in str(u.value) for n in job.patient.known.names), name
            kept_by_option[name] = "descriptors"
        else:
            missing[name] = missing.get(name, 0) + 1
    for name in ("StudyDate", "PatientBirthDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        if name in source and str(source[name].value):
            assert ours[name].value == shift_da(str(source[name].value), job.patient.shift_days), name
    return True


def _first_middle_last(jobs: list[FileJob]) -> list[FileJob]:
    return list({id(j): j for j in (jobs[0], jobs[len(jobs) // 2], jobs[-1])}.values())


@pytest.mark.slow
def test_every_tag_orthanc_removes_or_replaces_ours_does_too(orthanc, small_hospital, tmp_path):
    export, _ = small_hospital
    key, cfg = DeidKey(b"o" * 40), DeidConfig()
    plan = plan_export(export, key, cfg)
    by_exam: dict[str, list] = {}
    for job in plan.jobs:
        by_exam.setdefault(job.out_rel.split("/")[1], []).append(job)
    init_worker(WorkerSetup(key, str(tmp_path), BurnedInConfig(), "flag"))
    missing, kept_by_option = {}, {}
    compared = sum(_compare(orthanc, job, tmp_path, missing, kept_by_option)
                   for jobs in by_exam.values() for job in _first_middle_last(jobs))
    print(f"\ncompared {compared} synthetic files with Orthanc's /anonymize; kept under our options: {kept_by_option}")
    assert compared >= 20
    assert not missing, f"Orthanc removes or replaces these, ours keeps them: {missing}"


@pytest.mark.shared
def test_real_ct_series_against_orthanc(orthanc, tmp_path):
    """The same on two real TCIA CT series (implicit and explicit VR, sequences, private CTP block)."""
    root = shared_data("lung_pet_ct_dx_sample")
    key = DeidKey(b"t" * 40)
    init_worker(WorkerSetup(key, str(tmp_path), BurnedInConfig(), "flag"))
    missing, kept_by_option, compared = {}, {}, 0
    for series in sorted(p for p in root.glob("*/*") if p.is_dir()):
        files = sorted(series.glob("*.dcm"))
        if not files:
            continue
        patient = PatientContext(key.pseudonym("patient", series.parent.name), 500, KnownIdentifiers())
        jobs = [FileJob(str(f), f"images/{series.parent.name}/{series.name}/{f.stem}.dcm", patient, None)
                for f in files]
        compared += sum(_compare(orthanc, job, tmp_path, missing, kept_by_option) for job in _first_middle_last(jobs))
    print(f"\ncompared {compared} real files with Orthanc's /anonymize; kept under our options: {kept_by_option}")
    assert compared >= 4
    assert not missing, f"Orthanc removes or replaces these, ours keeps them: {missing}"
