"""The header walker and the pixel reader against pydicom, and odd files from pydicom's own test data (plus
pydicom-data, plus synthesized MONOCHROME1 / truncated / bad-VR / no-meta files) each ending in the ledger."""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data

from imaging_factory import chest_like, ct_series, radiograph
from p2med.common.atomic import write_jsonl
from p2med.imaging.config import IngestConfig
from p2med.imaging.dicom_header import header_from_dataset, read_header
from p2med.imaging.ingest import ingest_export
from p2med.imaging.pixels import read_frames

PYDICOM_FILES = Path(pydicom.data.get_testdata_file("CT_small.dcm")).parent
_IGNORED = {"path", "reader", "pixel_offset", "pixel_length"}


def odd_files() -> list[Path]:
    """Every file of pydicom's test data and of the pydicom-data package (when installed)."""
    files = sorted(p for p in PYDICOM_FILES.rglob("*") if p.is_file())
    try:
        import data_store
        files += sorted(p for p in (Path(data_store.__file__).parent / "data").rglob("*") if p.is_file())
    except ImportError:
        pass
    return files


def _pydicom_reference(path: Path):
    """pydicom's reading of the same header, or None when pydicom itself cannot read it cleanly."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            ds = pydicom.dcmread(path, force=True, defer_size=1024)
        except Exception:  # noqa: BLE001 - a file pydicom rejects or warns about is no reference
            return None
    return header_from_dataset(ds, str(path)) if len(ds) else None


def test_walker_reads_what_pydicom_reads(tmp_path):
    made = ct_series(tmp_path / "e", n=2, size=16) + ct_series(tmp_path / "i", n=2, size=16, signed=True,
                                                               syntax="1.2.840.10008.1.2", seed="i")
    made.append(radiograph(tmp_path / "x.dcm", chest_like(40, 40), view_position="PA", monochrome1=True))
    walked = 0
    for path in odd_files() + made:
        try:
            header = read_header(path)
        except Exception:  # noqa: BLE001 - damaged files are the ledger test's business
            continue
        if header is None or header.reader != "walker":
            continue
        ref = _pydicom_reference(path)
        if ref is None:
            continue
        walked += 1
        diff = {k: (v, getattr(ref, k)) for k, v in dataclasses.asdict(header).items()
                if k not in _IGNORED and v != getattr(ref, k)}
        assert not diff, f"{path.name}: {diff}"
    assert walked > 100


def test_fast_pixel_path_equals_pixel_array(tmp_path):
    made = ct_series(tmp_path / "s", n=2, size=16, signed=True) + \
        [radiograph(tmp_path / "x.dcm", chest_like(40, 40), view_position="PA", bits=10)]
    checked = 0
    for path in odd_files() + made:
        try:
            header = read_header(path)
        except Exception:  # noqa: BLE001
            continue
        if header is None or not header.fast_pixels:
            continue
        ref = pydicom.dcmread(path).pixel_array
        ref = ref if header.n_frames > 1 else ref[None]
        assert np.array_equal(read_frames(header), ref), path.name
        checked += 1
    assert checked > 30


def test_big_endian_deflated_and_compressed_files_decode():
    little = read_frames(read_header(pydicom.data.get_testdata_file("MR_small.dcm")))
    for name in ("MR_small_bigendian.dcm", "MR_small_expb.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"):
        assert np.array_equal(read_frames(read_header(pydicom.data.get_testdata_file(name))), little), name
    for name in ("JPEG-LL.dcm", "SC_rgb_jpeg_dcmtk.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm"):   # lossless, baseline
        header = read_header(pydicom.data.get_testdata_file(name))
        assert read_frames(header).shape == (header.n_frames, header.rows, header.cols), name
    deflated = read_header(pydicom.data.get_testdata_file("image_dfl.dcm"))
    assert deflated.reader == "pydicom" and read_frames(deflated).shape == (1, 512, 512)


def _synthesized_odd(folder: Path) -> dict[str, str]:
    """Broken files made here: name -> the ledger status expected for it."""
    folder.mkdir(parents=True)
    ct = ct_series(folder / "ok_ct", n=6, size=16, seed="ok")
    data = ct[0].read_bytes()
    (folder / "truncated_pixels.dcm").write_bytes(data[:-100])
    (folder / "truncated_header.dcm").write_bytes(data[:300])
    pos = data.index(b"CS", 132)
    (folder / "bad_vr.dcm").write_bytes(data[:pos] + b"ZZ" + data[pos + 2:])
    ds = pydicom.dcmread(ct[1])
    del ds.file_meta
    ds.SOPInstanceUID, ds.SeriesInstanceUID = ds.SOPInstanceUID + ".9", ds.SeriesInstanceUID + ".9"
    ds.save_as(folder / "no_meta.dcm", enforce_file_format=False, implicit_vr=True, little_endian=True)
    (folder / "notes.txt").write_text("not an image")
    (folder / "empty.dcm").write_bytes(b"")
    radiograph(folder / "mono1.dcm", chest_like(64, 60), monochrome1=True, view_position="PA", bits=10)
    return {"truncated_pixels.dcm": "quarantined", "truncated_header.dcm": "quarantined", "notes.txt": "excluded",
            "empty.dcm": "quarantined", "mono1.dcm": "used"}


def test_odd_files_each_end_in_the_ledger_with_a_reason(tmp_path):
    export = tmp_path / "export"
    odd = export / "images" / "odd"
    odd.mkdir(parents=True)
    for i, path in enumerate(odd_files()):
        shutil.copy(path, odd / f"{i:03d}_{path.name}")
    expected = _synthesized_odd(export / "images" / "made")
    write_jsonl(export / "exams.jsonl", [
        {"exam_id": "E1", "patient_id": "P", "modality": "XR", "files": ["images/odd", "images/made"]},
        {"exam_id": "E2", "patient_id": "P", "modality": "CT", "files": ["images/odd", "images/made"]},
        {"exam_id": "E3", "patient_id": "P", "modality": "CT", "files": []}])
    counts = ingest_export(export, tmp_path / "cache", IngestConfig(image_size=32, min_slices=3), workers=1,
                           progress=False)
    rows = [json.loads(line) for line in open(tmp_path / "cache" / "ledger.jsonl", encoding="utf-8")]
    sources = [r["source"] for r in rows]
    on_disk = sorted(p.relative_to(export).as_posix() for p in export.rglob("*") if p.is_file())
    assert sorted(sources) == sorted(on_disk + ["exam:E3"]) and len(set(sources)) == len(sources)
    assert all(r["status"] == "used" or r["reason"] for r in rows)
    by_name = {r["source"].rsplit("/", 1)[-1]: r for r in rows}
    for name, status in expected.items():
        assert by_name[name]["status"] == status, (name, by_name[name])
    assert by_name["truncated_pixels.dcm"]["reason"].startswith("truncated")
    assert by_name["notes.txt"]["reason"].startswith("not_image")
    assert {by_name[f"I{k:04d}.dcm"]["status"] for k in range(1, 7)} == {"used"}      # the good CT series
    truncated = next(r for r in rows if r["source"].endswith("_MR_truncated.dcm"))
    assert truncated["status"] == "quarantined" and truncated["reason"].startswith("truncated")
    assert counts["exams_with_images"] == 2 and counts["ledger"]["quarantined"] >= 5
    assert by_name["exam:E3"]["reason"].startswith("no_images")
