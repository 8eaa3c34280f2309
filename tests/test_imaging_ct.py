"""CT: series choice on real TCIA files, HU, slice order, geometry rejections, NC/CE padding, subsampling,
compressed and NIfTI input."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pydicom.data
import pytest
from scipy import ndimage

from conftest import shared_data
from imaging_factory import ct_series, ct_volume, marker_hu
from p2med.imaging.config import IngestConfig
from p2med.imaging.ct_series import dicom_candidates
from p2med.imaging.dicom_index import index_files
from p2med.imaging.ingest import ingest_files
from p2med.imaging.pixels import read_frames
from p2med.imaging.window import hu

CFG = IngestConfig(image_size=32, min_slices=3)


def window(v: float) -> float:
    return float(np.clip((v + 1100.0) / 1200.0, 0.0, 1.0))


def reasons(res) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for o in res.files.values():
        out.setdefault(o.status, set()).add(o.code)
    return out


@pytest.mark.shared
def test_real_5mm_philips_series_is_chosen_over_the_8mm_siemens_one():
    root = shared_data("lung_pet_ct_dx_sample")
    philips = sorted((root / "Lung_Dx-A0001" / "series_2_5mm").glob("*.dcm"))
    siemens = sorted((root / "Lung_Dx-A0002" / "series_3_B40f").glob("*.dcm"))
    files = philips + siemens
    random.Random(0).shuffle(files)
    res = ingest_files(files, IngestConfig())
    (entry, arr), = res.images
    assert entry["role"] == "nc" and entry["chosen_by"] == "thickness_and_kernel"
    assert arr.shape == (64, 336, 336) and entry["true_slices"] == 64 and arr.dtype == np.float32
    assert 0.0 <= arr.min() and arr.max() <= 1.0
    assert entry["spacing_mm"][0] == pytest.approx(5.0, abs=0.01)
    assert all(a > b for a, b in zip(entry["slice_z_mm"], entry["slice_z_mm"][1:]))      # superior first
    assert {res.files[str(p)].status for p in philips} == {"used"}
    assert {(res.files[str(p)].status, res.files[str(p)].code) for p in siemens} == {("excluded", "not_chosen")}
    assert "8 mm" in res.files[str(siemens[0])].text and "5 mm" in entry["why"]


@pytest.mark.shared
def test_real_series_hu_of_air_and_lung_parenchyma():
    files = sorted((shared_data("lung_pet_ct_dx_sample") / "Lung_Dx-A0001" / "series_2_5mm").glob("*.dcm"))
    cand, = dicom_candidates(index_files(files), IngestConfig())
    middle = cand.stack.slices[len(cand.stack.slices) // 2].header
    x = hu(read_frames(middle)[0], middle.rescale_slope, middle.rescale_intercept)          # [512, 512] HU
    counts, edges = np.histogram(x, bins=np.arange(-1200, 1200, 10))
    assert -1040 <= edges[np.argmax(counts)] <= -960                                         # air: the mode
    labels, n = ndimage.label(x < -400)
    border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])))
    sizes = ndimage.sum(np.ones_like(x), labels, index=np.arange(1, n + 1))
    inner = [i + 1 for i in np.argsort(-sizes) if i + 1 not in border][:2]                    # the two lungs
    lung = np.isin(labels, inner)
    assert lung.sum() > 5000 and -950 <= np.median(x[lung]) <= -650


@pytest.mark.parametrize("instances", ["ascending", "descending"])
def test_slice_order_survives_shuffled_files_and_instance_numbers(tmp_path, instances):
    files = ct_series(tmp_path / "s", n=10, size=32, instances=instances)
    random.Random(3).shuffle(files)
    (entry, arr), = ingest_files(files, CFG).images
    centre = arr[:, 16, 16]
    assert np.allclose(centre, [window(marker_hu(k)) for k in range(10)], atol=1e-5)
    assert entry["slice_z_mm"] == [-5.0 * k for k in range(10)]


def test_nc_and_ce_are_kept_and_the_shorter_is_zero_padded(tmp_path):
    nc = ct_series(tmp_path / "nc", n=8, size=32, seed="nc", series_number=2)
    ce = ct_series(tmp_path / "ce", n=11, size=32, z0=10.0, seed="ce", series_number=3, contrast=True,
                   description="Thorax C+ 5.0 B70f")
    res = ingest_files(ce + nc, CFG)
    (e_nc, a_nc), (e_ce, a_ce) = res.images
    assert (e_nc["role"], e_ce["role"]) == ("nc", "ce")
    assert a_nc.shape == a_ce.shape == (11, 32, 32) and e_nc["shape"] == e_ce["shape"] == [11, 32, 32]
    assert (e_nc["true_slices"], e_ce["true_slices"]) == (8, 11)
    assert not a_nc[8:].any() and a_nc[:8].min(axis=(1, 2)).max() > 0
    assert e_ce["contrast"] and "ContrastBolusAgent" in e_ce["why"]


def test_long_series_are_subsampled_evenly_with_a_warning(tmp_path):
    files = ct_series(tmp_path / "s", n=20, size=32)
    (entry, arr), = ingest_files(files, IngestConfig(image_size=32, max_slices=8)).images
    assert arr.shape[0] == entry["true_slices"] == 8 and entry["source_slices"] == 20
    kept = [round(-z / 5.0) for z in entry["slice_z_mm"]]
    assert kept[0] == 0 and kept[-1] == 19 and len(set(np.diff(kept))) <= 2
    assert np.allclose(arr[:, 16, 16], [window(marker_hu(k)) for k in kept], atol=1e-5)
    assert any("subsampled" in w for w in entry["warnings"])


def _with(files, fn):
    import pydicom
    for f in files:
        ds = pydicom.dcmread(f)
        fn(ds, f)
        ds.save_as(f)


@pytest.mark.parametrize("defect,code", [("duplicate", "duplicate_positions"), ("gap", "gap"),
                                         ("orientation", "mixed_orientation"), ("no_position", "no_geometry")])
def test_broken_geometry_rejects_the_series_and_the_good_one_is_kept(tmp_path, defect, code):
    good = ct_series(tmp_path / "good", n=6, size=32, seed="good", kernel="B31f", series_number=4)
    bad = ct_series(tmp_path / "bad", n=8, size=32, seed="bad", series_number=2)
    if defect == "gap":
        bad[3].unlink()
        bad = bad[:3] + bad[4:]
    elif defect == "duplicate":
        _with(bad[4:5], lambda ds, f: setattr(ds, "ImagePositionPatient", [-100.0, -100.0, -15.0]))
    elif defect == "orientation":
        _with(bad[2:3], lambda ds, f: setattr(ds, "ImageOrientationPatient", [1, 0, 0, 0, 0.8, -0.6]))
    else:
        _with(bad[1:2], lambda ds, f: delattr(ds, "ImagePositionPatient"))
    res = ingest_files(good + bad, CFG)
    (entry, _), = res.images
    assert entry["series_number"] == 4 and entry["chosen_by"] == "thickness_only"
    assert {(res.files[str(f)].status, res.files[str(f)].code) for f in bad} == {("excluded", code)}


def test_coronal_reformat_and_localizer_are_never_the_axial_series(tmp_path):
    coronal = ct_series(tmp_path / "cor", n=8, size=32, orientation=(1, 0, 0, 0, 0, -1), seed="cor",
                        series_number=5)
    scout = ct_series(tmp_path / "loc", n=1, size=32, orientation=(1, 0, 0, 0, 0, -1), seed="loc",
                      series_number=1, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    res = ingest_files(coronal + scout, CFG)
    assert res.images == [] and res.modality is None
    assert reasons(res) == {"excluded": {"not_axial", "localizer"}}
    thin = ct_series(tmp_path / "thin", n=12, size=32, dz=1.0, thickness=1.0, seed="thin", series_number=3)
    res = ingest_files(coronal + scout + thin, CFG)
    (entry, _), = res.images
    assert entry["series_number"] == 3 and entry["chosen_by"] == "nearest_thickness"
    assert any("nearest thickness" in w for w in res.warnings)
    none = ingest_files(coronal + scout + thin, IngestConfig(image_size=32, min_slices=3, thickness_fallback="none"))
    assert none.images == []


def test_lung_kernel_5mm_beats_soft_kernel_and_thin_series(tmp_path):
    soft = ct_series(tmp_path / "soft", n=8, size=32, kernel="B31f", description="Thorax 5.0 B31f", seed="a",
                     series_number=2)
    thin = ct_series(tmp_path / "thin", n=20, size=32, dz=1.0, thickness=1.0, seed="b", series_number=3)
    lung = ct_series(tmp_path / "lung", n=8, size=32, kernel="", description="胸部平扫 肺窗 5mm", seed="c",
                     series_number=4)
    res = ingest_files(soft + thin + lung, CFG)
    (entry, _), = res.images
    assert entry["series_number"] == 4 and entry["kernel_class"] == "lung" and "肺窗" in entry["why"]
    assert {res.files[str(f)].code for f in soft + thin} == {"not_chosen"}


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90"])
def test_compressed_series_decode_to_the_same_tensor(tmp_path, syntax):
    import pydicom
    plain = ct_series(tmp_path / "plain", n=6, size=32, signed=True, intercept=0.0)
    packed = []
    for f in plain:
        ds = pydicom.dcmread(f)
        ds.compress(syntax)
        out = tmp_path / "packed" / f.name
        out.parent.mkdir(exist_ok=True)
        ds.save_as(out, enforce_file_format=True)
        packed.append(out)
    (_, a), = ingest_files(plain, CFG).images
    (_, b), = ingest_files(packed, CFG).images
    assert np.array_equal(a, b)


def test_implicit_vr_signed_and_flipped_orientation_give_the_display_image(tmp_path):
    vol = ct_volume(5, 32)
    vol[:, 2:6, 2:10] = 50.0                                   # an asymmetric mark: patient's right, anterior
    ref = ct_series(tmp_path / "ref", n=5, size=32, seed="r", hu=vol)
    flipped = ct_series(tmp_path / "flip", n=5, size=32, seed="f", hu=vol[:, ::-1, ::-1].copy(), signed=True,
                        intercept=0.0, orientation=(-1, 0, 0, 0, -1, 0), syntax="1.2.840.10008.1.2")
    (e1, a1), = ingest_files(ref, CFG).images
    (e2, a2), = ingest_files(flipped, CFG).images
    assert e2["reoriented"] == {"transpose": False, "flip_rows": True, "flip_cols": True}
    assert np.abs(a1 - a2).max() <= 1e-6


def test_enhanced_multiframe_ct_uses_its_per_frame_positions():
    path = Path(pydicom.data.get_testdata_file("eCT_Supplemental.dcm"))
    (entry, arr), = ingest_files([path], IngestConfig(image_size=32, min_slices=2)).images
    assert arr.shape == (2, 32, 32) and entry["slice_z_mm"] == [-149.0, -159.0]      # superior first
    assert [u.rsplit("#", 1)[1] for u in entry["source_uids"]] == ["2", "1"]
    assert entry["reoriented"]["flip_cols"]                       # stored with rows running to patient right


def test_nifti_volume_matches_the_same_dicom_series(tmp_path):
    nib = pytest.importorskip("nibabel")
    vol = ct_volume(6, 32)
    vol[:, 2:6, 2:10] = 50.0
    dicom = ct_series(tmp_path / "d", n=6, size=32, hu=vol)
    data = np.ascontiguousarray(vol[::-1].transpose(2, 1, 0))          # [x=col, y=row, z from inferior]
    affine = np.array([[-0.7, 0, 0, 100.0], [0, -0.7, 0, 100.0], [0, 0, 5.0, -25.0], [0, 0, 0, 1]])
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), str(path))
    (e_d, a_d), = ingest_files(dicom, CFG).images
    (e_n, a_n), = ingest_files([path], CFG).images
    assert e_n["source_files"] == [str(path)] and e_n["slice_z_mm"] == e_d["slice_z_mm"]
    assert np.abs(a_d - a_n).max() <= 1e-5
