"""The synthetic hospital's DICOM: readable, round-trippable, correct CT geometry, lesions where planted,
realistic HU, and byte-identical for a seed whatever the output path."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest

from p2med.synth.config import SynthConfig
from p2med.synth.hospital import synthesize


def _truth(truth_dir: Path) -> dict[str, dict]:
    return {json.loads(l)["exam_id"]: json.loads(l) for l in (truth_dir / "findings.jsonl").read_text().splitlines()}


def _files(export: Path, exam_id: str) -> list[Path]:
    return sorted(p for p in (export / "images" / exam_id).rglob("*") if p.is_file())


def _series(export: Path, exam_id: str) -> dict[str, list[pydicom.Dataset]]:
    out = defaultdict(list)
    for p in _files(export, exam_id):
        ds = pydicom.dcmread(p)
        out[ds.SeriesInstanceUID].append(ds)
    return out


def test_every_file_reads_and_round_trips(small_hospital):
    export, _ = small_hospital
    files = [p for p in (export / "images").rglob("*") if p.is_file()]
    assert len(files) > 50
    for p in files[::7]:
        raw = p.read_bytes()
        assert raw[128:132] == b"DICM", p
        ds = pydicom.dcmread(io.BytesIO(raw))
        arr = ds.pixel_array
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        again = pydicom.dcmread(io.BytesIO(buf.getvalue()))
        assert again.SOPInstanceUID == ds.SOPInstanceUID and again.PatientName == ds.PatientName
        assert np.array_equal(again.pixel_array, arr)


def test_ct_geometry_is_consistent(small_hospital):
    export, truth_dir = small_hospital
    ct = [e for e, t in _truth(truth_dir).items() if t["modality"] == "CT"]
    assert ct
    for exam in ct:
        for uid, slices in _series(export, exam).items():
            if "LOCALIZER" in slices[0].ImageType or len(slices) < 2:
                continue
            iop = np.array(slices[0].ImageOrientationPatient, float)
            normal = np.cross(iop[:3], iop[3:])
            assert all(np.allclose(s.ImageOrientationPatient, iop) for s in slices)
            pos = np.array(sorted(float(np.dot(normal, s.ImagePositionPatient)) for s in slices))
            gaps = np.diff(pos)
            assert np.all(gaps > 0), "positions along the normal are strictly monotonic"
            if "AXIAL" in slices[0].ImageType:
                assert np.allclose(gaps, float(slices[0].SliceThickness), atol=1e-3), "spacing = thickness"
            assert len({(s.Rows, s.Columns) for s in slices}) == 1
            assert sorted(int(s.InstanceNumber) for s in slices) == list(range(1, len(slices) + 1))


def _hu(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_ct_hounsfield_ranges_and_lesion_at_planted_slices(small_hospital):
    export, truth_dir = small_hospital
    checked = 0
    for exam, t in _truth(truth_dir).items():
        if t["modality"] != "CT":
            continue
        nc = next(s for s in t["series"] if s["role"] == "nc_lung")
        slices = _series(export, exam)[nc["series_instance_uid"]]
        slices.sort(key=lambda s: float(s.ImagePositionPatient[2]))
        vol = np.stack([_hu(s) for s in slices])          # [Z, H, W], z ascending
        assert -1050 < np.median(vol[:, :8, :8]) < -950, "air in the corner"
        mid = vol[len(vol) // 2]
        lung = mid[(mid > -950) & (mid < -600)]
        assert lung.size > 500 and -900 < lung.mean() < -650
        soft = vol[(vol > -20) & (vol < 120)]
        assert 10 < soft.mean() < 90
        assert vol.max() > 400, "bone"
        for f, les in zip(t["findings"], t["lesions"]["nc_lung"]):
            z0, z1, r0, r1, c0, c1 = les["box"]
            z_lo, z_hi = les["z_mm"]
            zs = [float(s.ImagePositionPatient[2]) for s in slices[z0:z1]]
            assert min(zs) <= z_lo + 1e-3 and max(zs) >= z_hi - 1e-3
            half = vol.shape[2] // 2
            assert (c0 + c1) / 2 < half if f["side"] == "right" else (c0 + c1) / 2 > half, "patient right = image left"
            box = vol[z0:z1, r0:r1, c0:c1]
            if f["pattern"] == "consolidation":
                assert np.percentile(box, 90) > -150
            if f["pattern"] == "effusion":
                assert np.any((box > -20) & (box < 40))
            checked += 1
    assert checked > 0


def test_xray_lesion_in_stated_zone(small_hospital):
    export, truth_dir = small_hospital
    checked = 0
    for exam, t in _truth(truth_dir).items():
        if t["modality"] != "XR":
            continue
        for view in t["views"]:
            ds = pydicom.dcmread(export / "images" / exam / view["file"])
            assert ds.PhotometricInterpretation == view["photometric"]
            if view["view"] != "frontal":
                continue
            for f, box in zip(t["findings"], view["lesion_boxes"]):
                zone = view["zone_boxes"][f"{f['side']}/{f['zone']}"]
                r0, r1, c0, c1 = box
                assert zone[0] <= r0 and r1 <= zone[1] and zone[2] <= c0 and c1 <= zone[3]
                checked += 1
    assert checked > 0


def test_xray_views_are_named_in_several_ways(small_hospital):
    export, truth_dir = small_hospital
    seen = set()
    for exam, t in _truth(truth_dir).items():
        if t["modality"] == "XR":
            for view in t["views"]:
                ds = pydicom.dcmread(export / "images" / exam / view["file"], stop_before_pixels=True)
                if view["view_tagging"] == "viewposition":
                    assert ds.ViewPosition in ("AP", "PA", "LL", "RL")
                else:
                    assert not ds.get("ViewPosition")
                seen.add((ds.Modality, ds.PhotometricInterpretation))
    assert len(seen) >= 2


def test_same_seed_same_bytes_any_path(tmp_path):
    cfg = SynthConfig(patients=2, seed=11, workers=2, ct_thin_share=0.0)
    synthesize(cfg, tmp_path / "a" / "x", progress=False)
    synthesize(SynthConfig(patients=2, seed=11, workers=1, ct_thin_share=0.0), tmp_path / "b" / "y" / "z",
               progress=False)
    a = (tmp_path / "a" / "x" / "manifest.json").read_bytes()
    assert a == (tmp_path / "b" / "y" / "z" / "manifest.json").read_bytes()
    assert (tmp_path / "a" / "x.truth" / "findings.jsonl").read_bytes() == \
        (tmp_path / "b" / "y" / "z.truth" / "findings.jsonl").read_bytes()
    synthesize(SynthConfig(patients=2, seed=12, ct_thin_share=0.0), tmp_path / "c", progress=False)
    assert a != (tmp_path / "c" / "manifest.json").read_bytes()
    assert str(tmp_path) not in a.decode()


def test_tiny_hospital_has_xray_and_ct(tmp_path):
    counts = synthesize(SynthConfig(patients=2, seed=5, ct_thin_share=0.0), tmp_path / "h", progress=False)
    assert counts["exams"].get("XR", 0) >= 1 and counts["exams"].get("CT", 0) >= 1


def test_ct_slices_with_gaps_are_one_series_ingest_reads(tmp_path):
    """ct.slice_interval_mm=10 (what the demo uses): 5 mm slices 10 mm apart, stated in the headers, and ingest
    takes the series whole (a regular step is not a gap)."""
    from p2med.imaging.ingest import ingest_export
    from p2med.synth.ct_phantom import CtPhantomConfig

    cfg = SynthConfig(patients=2, seed=5, ct_share=1.0, ct_thin_share=0.0, ct_soft_share=0.0, ct_coronal_share=0.0,
                      ct_localizer_share=0.0, ct_contrast_share=0.0, ct=CtPhantomConfig(slice_interval_mm=10.0))
    synthesize(cfg, tmp_path / "h", progress=False)
    series = [s for e, t in _truth(tmp_path / "h.truth").items() if t["modality"] == "CT"
              for s in _series(tmp_path / "h", e).values()]
    assert series
    for slices in series:
        z = np.sort([float(s.ImagePositionPatient[2]) for s in slices])
        assert np.allclose(np.diff(z), 10.0, atol=1e-3) and {float(s.SliceThickness) for s in slices} == {5.0}
        assert {float(s.SpacingBetweenSlices) for s in slices if "SpacingBetweenSlices" in s} <= {10.0}
    ingest_export(tmp_path / "h", tmp_path / "cache", progress=False)
    rows = [json.loads(l) for l in (tmp_path / "cache" / "exams.jsonl").read_text().splitlines()]
    read = sorted(len(i["slice_z_mm"]) for r in rows for i in r["images"] if i["modality"] == "CT")
    assert read == sorted(len(s) for s in series)
    with pytest.raises(ValueError, match="slice_interval_mm"):
        CtPhantomConfig(slice_interval_mm=2.5)
