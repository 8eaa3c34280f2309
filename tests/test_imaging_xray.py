"""Radiographs: view rules, MONOCHROME1, header / LUT / percentile windows, the real DX file and the IU PNGs."""

from __future__ import annotations

import csv

import numpy as np
import pydicom.data
import pytest

from conftest import shared_data
from imaging_factory import chest_like, ct_series, radiograph
from p2med.imaging.config import IngestConfig
from p2med.imaging.ingest import ingest_files
from p2med.imaging.other_formats import read_raster
from p2med.imaging.xray_view import view_from_content

CFG = IngestConfig(image_size=64)


@pytest.mark.parametrize("kwargs,view,rule", [
    (dict(view_position="PA"), "frontal", "ViewPosition"),
    (dict(view_position="AP"), "frontal", "ViewPosition"),
    (dict(view_position="LL"), "lateral", "ViewPosition"),
    (dict(view_position="", orientation=("L", "F")), "frontal", "PatientOrientation"),
    (dict(view_position="", orientation=("A", "F")), "lateral", "PatientOrientation"),
    (dict(description="胸部正位"), "frontal", "description"),
    (dict(description="CHEST LAT"), "lateral", "description"),
    (dict(description="胸部左侧位"), "lateral", "description"),
])
def test_view_rules_in_order(tmp_path, kwargs, view, rule):
    front = radiograph(tmp_path / "f.dcm", chest_like(), view_position="PA", seed="f")
    other = radiograph(tmp_path / "x.dcm", chest_like(lateral=view == "lateral"), series_number=2, seed="x",
                       **kwargs)
    res = ingest_files([front, other] if view == "lateral" else [other], CFG)
    entry = next(e for e, _ in res.images if e["source_files"] == [str(other)])
    assert entry["role"] == view and entry["chosen_by"] == rule


def test_untagged_views_fall_back_to_the_image_content(tmp_path):
    a = radiograph(tmp_path / "a.dcm", chest_like(lateral=True, seed=1), description="DR", seed="a")
    b = radiograph(tmp_path / "b.dcm", chest_like(seed=2), description="DR", series_number=2, seed="b")
    res = ingest_files([a, b], CFG)
    roles = {e["source_files"][0]: (e["role"], e["chosen_by"]) for e, _ in res.images}
    assert roles == {str(b): ("frontal", "image_content"), str(a): ("lateral", "image_content")}


def test_monochrome1_is_inverted_and_the_header_window_used(tmp_path):
    img = chest_like()
    m2 = radiograph(tmp_path / "m2.dcm", img, view_position="PA", window=(2047, 4095), seed="2")
    m1 = radiograph(tmp_path / "m1.dcm", img, view_position="PA", window=(2047, 4095), monochrome1=True, seed="1")
    (e2, a2), = ingest_files([m2], IngestConfig(image_size=img.shape[0])).images
    (e1, a1), = ingest_files([m1], IngestConfig(image_size=img.shape[0])).images
    assert e1["window"]["inverted"] and e1["window"]["kind"] == "header" and "MONOCHROME1" in e1["why"]
    assert np.abs(a1 - a2).max() < 2e-3                   # one stored step of 12 bits plus the inverted window
    assert a2[0, 100, 90] > a2[0, 100, 54]                 # mediastinum brighter than the lung: not inverted


def test_lut_sequences_are_applied(tmp_path):
    for name, kind in (("vlut_04.dcm", "voi_lut_sequence"), ("mlut_18.dcm", None)):
        ds = pydicom.dcmread(pydicom.data.get_testdata_file(name))
        ds.ViewPosition = "PA"
        ds.save_as(tmp_path / name)
        (entry, arr), = ingest_files([tmp_path / name], CFG, modality="XR").images
        assert arr.shape == (1, 64, 64) and 0 <= arr.min() < arr.max() <= 1
        assert kind is None or entry["window"]["kind"] == kind


def test_exam_without_frontal_view_and_extra_views(tmp_path):
    lat = radiograph(tmp_path / "lat.dcm", chest_like(lateral=True), view_position="LL", seed="l")
    res = ingest_files([lat], CFG)
    assert res.images == [] and res.files[str(lat)].code == "no_frontal"
    f1 = radiograph(tmp_path / "f1.dcm", chest_like(), view_position="PA", seed="1", series_number=1)
    f2 = radiograph(tmp_path / "f2.dcm", chest_like(), view_position="AP", seed="2", series_number=2)
    obl = radiograph(tmp_path / "o.dcm", chest_like(), view_position="LAO", seed="o", series_number=3)
    ct = ct_series(tmp_path / "ct", n=2, size=16)
    res = ingest_files([f2, f1, obl, lat, *ct], IngestConfig(image_size=64, keep_lateral=False), modality="XR")
    assert [e["role"] for e, _ in res.images] == ["frontal"]
    codes = {p: o.code for p, o in res.files.items()}
    assert codes[str(f1)] is None and codes[str(f2)] == "duplicate_view" and codes[str(obl)] == "other_view"
    assert codes[str(lat)] == "lateral_not_kept" and {codes[str(c)] for c in ct} == {"other_modality"}


@pytest.mark.shared
def test_real_dx_radiograph():
    path, = shared_data("dicom_cxr_dx_sample").glob("*.dcm")
    res = ingest_files([path], IngestConfig())
    (entry, arr), = res.images
    assert entry["role"] == "frontal" and entry["chosen_by"] == "image_content"
    assert entry["window"]["kind"] == "percentile" and arr.shape == (1, 336, 336)
    assert 0 <= arr.min() and arr.max() <= 1 and arr.std() > 0.1


@pytest.mark.shared
def test_real_iu_pngs_views_and_pair():
    root = shared_data("iu_xray_images_mini")
    rows = list(csv.DictReader(open(root / "metadata.csv", encoding="utf-8")))
    for row in rows:
        arr, bits = read_raster(root / row["file"])
        call = view_from_content(arr / 255.0, IngestConfig())
        assert call.view == row["view_by_visual_check"].lower(), row["file"]
    pair = [root / "images" / "2_2.png", root / "images" / "2_1.png"]
    res = ingest_files(pair, IngestConfig())
    assert [(e["role"], e["source_files"][0].rsplit("/", 1)[1]) for e, _ in res.images] == \
        [("frontal", "2_1.png"), ("lateral", "2_2.png")]
    assert all(e["window"]["kind"] == "png_8bit" and a.shape == (1, 336, 336) for e, a in res.images)


def test_pictures_named_by_their_view_use_the_file_name(tmp_path):
    from PIL import Image
    for name, lateral in (("frontal.png", False), ("lateral.png", True)):
        Image.fromarray((chest_like(lateral=lateral) * 255).astype(np.uint8)).save(tmp_path / name)
    res = ingest_files([tmp_path / "lateral.png", tmp_path / "frontal.png"], CFG)
    assert [(e["role"], e["chosen_by"]) for e, _ in res.images] == [("frontal", "file_name"), ("lateral", "file_name")]
