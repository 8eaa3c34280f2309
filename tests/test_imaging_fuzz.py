"""Seeded mutation fuzzing: hundreds of corrupted DICOM files (bit flips, truncation, clobbered lengths, inserted
and deleted bytes) in CT and X-ray exams; ingestion must not crash and must give every file one ledger entry.

Each mutant gets fresh UIDs before it is damaged, so it is not just excluded as a copy of another file: every
radiograph mutant is decoded, and each CT exam is one two-slice series, so its mutants reach the pixel reader too.
"""

from __future__ import annotations

import copy
import io
import json
import random
import warnings
from pathlib import Path

import pydicom

from imaging_factory import chest_like, ct_series, radiograph
from p2med.common.atomic import write_jsonl
from p2med.imaging.config import IngestConfig
from p2med.imaging.ingest import ingest_export

N_MUTANTS = 360
XR_PER_EXAM = 30


def _bases(folder: Path) -> tuple[list[list[pydicom.Dataset]], list[pydicom.Dataset]]:
    """(two-slice CT series, radiographs) in several encodings, as datasets."""
    ct = [ct_series(folder / "e", n=2, size=24, seed="e"),
          ct_series(folder / "i", n=2, size=24, seed="i", syntax="1.2.840.10008.1.2", signed=True, intercept=0.0)]
    series = [[pydicom.dcmread(f) for f in s] for s in ct]
    rle = [pydicom.dcmread(f) for f in ct[0]]
    for ds in rle:
        ds.compress("1.2.840.10008.1.2.5")
        ds.ReferencedImageSequence = [pydicom.Dataset()]                 # a sequence for the walker to skip
        ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = "1.2.3"
    series.append(rle)
    xr = [pydicom.dcmread(radiograph(folder / f"x{i}.dcm", chest_like(48, 40, seed=i), monochrome1=i == 1,
                                     view_position="PA" if i < 2 else "", bits=10 + i))
          for i in range(3)]
    j2k = pydicom.dcmread(radiograph(folder / "j.dcm", chest_like(48, 40), view_position="PA"))
    j2k.compress("1.2.840.10008.1.2.4.90")
    return series, xr + [j2k]


def _bytes(ds: pydicom.Dataset, tag: str) -> bytes:
    ds = copy.deepcopy(ds)
    uid = pydicom.uid.generate_uid(entropy_srcs=[tag])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(6)
    head = min(len(b), 1200)
    if kind == 0:                                    # flip bits anywhere
        for _ in range(rng.randint(1, 20)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == 1:                                  # random bytes in the header
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(128, head)] = rng.randrange(256)
    elif kind == 2:                                  # truncate
        del b[rng.randrange(1, len(b)):]
    elif kind == 3:                                  # clobber a length-like field in the header
        i = rng.randrange(132, head - 4)
        b[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xff\xff\x00\x00", b"\x01\x00\x00\x10"])
    elif kind == 4:                                  # insert or delete a few header bytes
        i = rng.randrange(132, head)
        if rng.random() < 0.5:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
        else:
            del b[i:i + rng.randint(1, 6)]
    else:                                            # swap two header chunks
        i, j = sorted(rng.sample(range(132, head - 16), 2))
        b[i:i + 16], b[j:j + 16] = b[j:j + 16], b[i:i + 16]
    return bytes(b)


def run_fuzz(tmp_path: Path, seed: int) -> tuple[Path, list[dict], dict]:
    """Write the mutants of ``seed`` into an export and ingest it; returns (export, ledger rows, counts)."""
    rng = random.Random(seed)
    series, radiographs = _bases(tmp_path / "bases")
    export = tmp_path / "export"
    exams = []
    for e in range(N_MUTANTS // 2 // XR_PER_EXAM):                    # X-ray exams of 30 files
        folder = export / "xr" / f"{e:02d}"
        folder.mkdir(parents=True)
        for k in range(XR_PER_EXAM):
            data = _bytes(rng.choice(radiographs), f"{seed}-xr-{e}-{k}")
            (folder / f"{k:03d}").write_bytes(_mutate(rng, data) if k % 6 else data)
        exams.append({"exam_id": f"x{e:02d}", "patient_id": "p", "modality": "XR", "files": [f"xr/{e:02d}"]})
    for e in range(N_MUTANTS // 4):                                    # CT exams: one two-slice series each
        folder = export / "ct" / f"{e:03d}"
        folder.mkdir(parents=True)
        base = rng.choice(series)
        series_uid = pydicom.uid.generate_uid(entropy_srcs=[f"{seed}-s-{e}"])
        for k, ds in enumerate(base):
            ds.SeriesInstanceUID = series_uid
            (folder / f"{k}.dcm").write_bytes(_mutate(rng, _bytes(ds, f"{seed}-ct-{e}-{k}")))
        exams.append({"exam_id": f"c{e:03d}", "patient_id": "p", "modality": "CT", "files": [f"ct/{e:03d}"]})
    write_jsonl(export / "exams.jsonl", exams)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counts = ingest_export(export, tmp_path / "cache", IngestConfig(image_size=32, min_slices=2), workers=2,
                               progress=False)
    rows = [json.loads(line) for line in open(tmp_path / "cache" / "ledger.jsonl", encoding="utf-8")]
    return export, rows, counts


def test_corrupted_dicoms_never_crash_and_all_reach_the_ledger(tmp_path):
    export, rows, counts = run_fuzz(tmp_path, 20240515)
    sources = sorted(r["source"] for r in rows)
    files = sorted(p.relative_to(export).as_posix() for p in export.rglob("*") if p.is_file())
    assert sources == files and len(files) == N_MUTANTS + 1               # + exams.jsonl
    assert all(r["status"] == "used" or r["reason"] for r in rows)
    assert not [r for r in rows if (r["reason"] or "").startswith("internal_error")]
    assert counts["ledger"]["quarantined"] > N_MUTANTS // 4
    assert counts["exams_by_modality"].get("CT", 0) > 0 and counts["exams_by_modality"].get("XR", 0) > 0
