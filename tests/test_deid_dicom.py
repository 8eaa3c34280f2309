"""DICOM de-identification: the key (pseudonyms, shifts never zero, UIDs), every row of the Basic Profile
table applied as it says, references kept valid, private tags gone (also when read back as UN), valid Part 10
output, quarantine reasons, and the burned-in text detector against the synthetic hospital's truth boxes."""

from __future__ import annotations

import datetime as dt
import io
import json

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from p2med.deid.burned_in import box_coverage, display_image, find_text_marks
from p2med.deid.dicom import FileJob, PatientContext, WorkerSetup, init_worker, process_file
from p2med.deid.burned_in import BurnedInConfig
from p2med.deid.keys import DeidKey, KeyFileError
from p2med.deid.profile import DUMMY, DicomContext, apply_profile, load_profile
from p2med.deid.text import KnownIdentifiers
from p2med.synth.dicom_common import StudyContext, base_dataset, set_pixels, to_bytes
from p2med.synth.phi import make_doctor, make_identity

KEY = DeidKey(b"k" * 40)
SHIFT = 437
# one value per VR for the table-driven test
VALUES = {"PN": "DOE^JOHN", "LO": "LONG VALUE 1", "SH": "SHORT1", "ST": "SHORT TEXT", "LT": "LONG TEXT",
          "UT": "UNLIMITED", "UC": "UNLIMITED CHARS", "CS": "CODE", "AE": "STATIONAE", "UR": "http://x.org/a",
          "DA": "20240305", "DT": "20240305093000", "TM": "093000", "UI": "1.2.3.4.5.6", "IS": "5", "DS": "1.5",
          "AS": "006Y", "US": 1, "OB": b"\x01\x02", "UN": b"\x01\x02"}


def test_key_file_is_checked_and_never_shown(tmp_path):
    with pytest.raises(KeyFileError, match="does not exist"):
        DeidKey.load(tmp_path / "missing.key")
    short = tmp_path / "short.key"
    short.write_text("abc")
    short.chmod(0o600)
    with pytest.raises(KeyFileError, match="at least 32"):
        DeidKey.load(short)
    open_key = tmp_path / "open.key"
    open_key.write_text("s" * 64)
    open_key.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        DeidKey.load(open_key)
    open_key.chmod(0o600)
    key = DeidKey.load(open_key)
    assert "s" * 32 not in repr(key) and "s" * 32 not in key.key_id


def test_pseudonyms_are_stable_keyed_and_distinct_per_kind():
    other = DeidKey(b"o" * 40)
    assert KEY.pseudonym("patient", "10012345") == KEY.pseudonym("patient", "10012345")
    assert KEY.pseudonym("patient", "10012345") != other.pseudonym("patient", "10012345")
    assert KEY.pseudonym("patient", "X").startswith("P") and KEY.pseudonym("visit", "X").startswith("V")
    assert KEY.pseudonym("patient", "X")[1:] != KEY.pseudonym("exam", "X")[1:]


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=20), st.integers(1, 400), st.integers(0, 2000))
def test_shift_is_never_zero_and_inside_its_range(pid, lo, width):
    days = KEY.shift_days(pid, lo, lo + width)
    assert lo <= days <= lo + width and days != 0


def test_shift_range_must_exclude_zero():
    with pytest.raises(ValueError):
        KEY.shift_days("p", 0, 10)


def test_remapped_uids_are_valid_stable_and_new():
    uid = "1.2.826.0.1.3680043.8.498.12345678901234567890"
    new = KEY.uid(uid)
    assert new == KEY.uid(uid) and new != uid and len(new) <= 64
    assert pydicom.uid.UID(new).is_valid


def _context():
    return DicomContext("Pabc", SHIFT, KEY.uid, lambda s: "SCRUBBED:" + s)


def test_every_row_of_the_profile_table_is_applied_as_it_says():
    profile = load_profile()
    ds = Dataset()
    rows = {}
    for tag, rule in profile.rules.items():
        if rule.vr in VALUES:
            ds.add_new(tag, rule.vr, VALUES[rule.vr])
            rows[tag] = rule
        elif rule.vr == "SQ":
            item = Dataset()
            item.PatientName = "NESTED^NAME"
            item.CodeValue = "123"
            ds.add_new(tag, "SQ", Sequence([item]))
            rows[tag] = rule
    block = ds.private_block(0x0011, "ACME HIS", create=True)
    block.add_new(0x10, "LO", "任嘉子")
    ds.add_new(0x60003000, "OB", b"\x00" * 8)         # overlay data: a repeating-group row
    ds.Manufacturer = "ACME"                          # not in the table: kept, text still scrubbed
    assert len(rows) > 500
    apply_profile(ds, profile, _context())
    shifted = f"{dt.date(2024, 3, 5) + dt.timedelta(days=SHIFT):%Y%m%d}"
    for tag, rule in rows.items():
        where = f"{rule.tag} {rule.keyword} ({rule.basic}/{rule.option or '-'})"
        if rule.keyword in ("PatientName", "PatientID"):
            assert ds[tag].value == "Pabc", where
            continue
        action = rule.action
        if action == "remove":
            assert tag not in ds, where
            continue
        value = ds[tag].value
        if rule.vr == "SQ":
            if action in ("empty", "dummy"):
                assert len(value) == 0, where
            else:
                # the table applies inside kept sequences; kept free text passes through the scrubber
                assert value[0].PatientName == "Pabc" and value[0].CodeValue == "SCRUBBED:123", where
        elif action == "empty":
            assert value in ("", b"", None), where
        elif action == "dummy":
            expected = {"UI": KEY.uid(VALUES["UI"]), "DA": shifted, "DT": shifted + "093000", "TM": "093000",
                        "AS": ""}
            assert value in (expected.get(rule.vr, DUMMY), "0", 0, b""), where
        elif action in ("uid", "references"):
            assert value == KEY.uid(VALUES["UI"]), where
        elif action == "shift":
            expected = {"DA": shifted, "DT": shifted + "093000", "TM": "093000"}[rule.vr]
            assert value == expected, where
        elif action == "clean":
            assert value == "SCRUBBED:" + VALUES[rule.vr], where
    assert not any(e.tag.is_private for e in ds) and 0x60003000 not in ds
    assert ds.Manufacturer == "SCRUBBED:ACME"


def test_references_between_files_stay_valid():
    a, b = Dataset(), Dataset()
    a.SOPInstanceUID, a.SeriesInstanceUID = "1.2.3.100", "1.2.3.10"
    b.SOPInstanceUID, b.SeriesInstanceUID = "1.2.3.101", "1.2.3.10"
    refs = [Dataset(), Dataset()]
    for ref in refs:
        ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ref.ReferencedSOPInstanceUID = "1.2.3.100"
    b.ReferencedImageSequence = Sequence([refs[0]])
    b.SourceImageSequence = Sequence([refs[1]])
    for ds in (a, b):
        apply_profile(ds, load_profile(), _context())
    assert b.ReferencedImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID != "1.2.3.100"
    assert b.SourceImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert b.ReferencedImageSequence[0].ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert a.SeriesInstanceUID == b.SeriesInstanceUID != "1.2.3.10"


def _synthetic_file(syntax, burned_in: str = "") -> tuple[bytes, Dataset]:
    rng = np.random.default_rng(1)
    ident = make_identity(rng, "F", dt.date(2020, 1, 2))
    ctx = StudyContext(0, "DR24010100001000", "10000001", ident, dt.datetime(2024, 1, 1, 9, 30), "某市儿童医院",
                       make_doctor(rng), make_doctor(rng), "DR24010100001000", 1, True, "胸部正位")
    ds = base_dataset(ctx, "1.2.840.10008.5.1.4.1.1.1.1", "1.2.826.0.1.3680043.8.498.77", "DX")
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.78"
    if burned_in:
        ds.BurnedInAnnotation = burned_in
    set_pixels(ds, (rng.random((64, 64)) * 4000).astype(np.uint16), 12, False, "MONOCHROME2")
    return to_bytes(ds, syntax), ds


def _run_one(tmp_path, data: bytes, name="in.dcm") -> tuple[object, Dataset | None]:
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / "out"
    init_worker(WorkerSetup(KEY, str(out), BurnedInConfig(), "flag"))
    patient = PatientContext("Ptest", SHIFT, KnownIdentifiers())
    result = process_file(FileJob(str(src), "images/E1/F1.dcm", patient, None))
    path = out / "images/E1/F1.dcm"
    return result, (pydicom.dcmread(path) if path.exists() else None)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_file_output_is_valid_part10_without_private_tags_or_identifiers(tmp_path, syntax):
    data, original = _synthetic_file(syntax)
    if syntax == ImplicitVRLittleEndian:     # private elements of an implicit-VR file read back as UN bytes
        assert pydicom.dcmread(io.BytesIO(data))[0x00111010].VR == "UN"
    result, ds = _run_one(tmp_path, data)
    assert result.status == "used" and ds is not None
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == KEY.uid(original.SOPInstanceUID)
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert not any(e.tag.is_private for e in ds)
    assert ds.PatientIdentityRemoved == "YES" and ds.PatientName == "Ptest" and ds.PatientID == "Ptest"
    assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100", "113107", "113105"]
    assert ds.StudyDate == f"{dt.date(2024, 1, 1) + dt.timedelta(days=SHIFT):%Y%m%d}"
    assert ds.PatientBirthDate == f"{dt.date(2020, 1, 2) + dt.timedelta(days=SHIFT):%Y%m%d}"
    raw = (tmp_path / "out/images/E1/F1.dcm").read_bytes()
    for value in (original.PatientAddress, str(original.PatientTelephoneNumbers), original.OtherPatientIDs,
                  original.InstitutionName, str(original.ReferringPhysicianName), original.AccessionNumber,
                  original.SOPInstanceUID):
        assert value.encode("utf-8") not in raw, value
    name = str(original.PatientName).split("=")[0]
    assert name.encode() not in raw and "胸部正位" in ds.StudyDescription   # descriptor cleaned, not dropped
    np.testing.assert_array_equal(ds.pixel_array, original.pixel_array)


def test_quarantine_and_exclusion_reasons(tmp_path):
    data, _ = _synthetic_file(ExplicitVRLittleEndian, burned_in="YES")
    result, ds = _run_one(tmp_path, data)
    assert (result.status, result.code, ds) == ("quarantined", "burned_in_annotation", None)
    result, ds = _run_one(tmp_path, b"\x00" * 300 + b"not dicom", name="junk.dcm")
    assert result.status == "quarantined" and result.code in ("unreadable", "unprocessable") and ds is None
    broken = pydicom.data.get_testdata_file("rtplan_truncated.dcm") or pydicom.data.get_testdata_file("CT_small.dcm")
    truncated = open(broken, "rb").read()[:400]
    result, _ = _run_one(tmp_path, truncated, name="truncated.dcm")
    assert result.status == "quarantined" and result.text and "1.2." not in result.text


def test_burned_in_detector_finds_the_truth_boxes_and_not_the_plain_radiographs(small_hospital):
    export, truth = small_hospital
    with_text, hits, plain, false_pos = 0, 0, 0, 0
    for line in (truth / "findings.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["modality"] != "XR":
            continue
        for view in row["views"]:
            box = find_text_marks(display_image(pydicom.dcmread(export / "images" / row["exam_id"] / view["file"])))
            tb = view["burned_in_box"]
            if tb:
                with_text += 1
                hits += box is not None and box_coverage(box, tb) >= 0.5     # covers at least half the text
            else:
                plain += 1
                false_pos += box is not None
    assert with_text >= 1 and hits == with_text
    print(f"burned-in detector on the small hospital: {hits}/{with_text} text boxes found, "
          f"{false_pos}/{plain} plain radiographs flagged")
    assert false_pos <= 0.1 * plain     # review flags stay rare: the detector does not flag radiographs wholesale
