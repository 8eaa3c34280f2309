"""CT series -> model tensor: ours (``p2med ingest``) against the stock way, on the same files, in one run.

Inputs: the real 64-slice Philips series in ``../shared/data/lung_pet_ct_dx_sample`` (when present) and a
synthetic 40-slice 512x512 series this script writes to a temp folder (``p2med.synth`` CT phantom). Each input is
copied K times with one stored pixel changed per copy, so every copy gives a distinct array and ours really
writes K cache files (the cache is content-addressed: identical copies would be written once).

- stock: one process; per file ``pydicom.dcmread`` + ``pixel_array``, sort by ImagePositionPatient z, numpy
  HU (RescaleSlope/Intercept) and window (-1100..100 -> 0..1), ``skimage.transform.resize`` to 336x336 per slice.
- decode: ``pydicom.dcmread`` + ``pixel_array`` of the same files, nothing else.
- ours: ``ingest_export`` over an export holding the K copies as K CT exams, ``--workers 2``, cache write
  (float16, sha256, fsync, rename), exams.jsonl, ledger and manifest included, pool start-up included.

Rates are volumes per wall-clock second (best of ``--reps`` runs); on a shared machine the CPU seconds per
volume (all our processes counted) are printed too, as they depend less on the neighbours. ``max_abs_diff``
compares our cached float16 arrays with the stock float64 ones on the 0..1 scale. The last line is one JSON object; its top-level figures are the
synthetic 40-slice series (the issue's anchors), ``real_64`` holds the real series'.
Run: ``PYTHONPATH=src python bench/ingest_ct.py [--copies 12] [--reps 3]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from p2med.common.atomic import write_jsonl  # noqa: E402
from p2med.imaging.cache import ImageCache  # noqa: E402
from p2med.imaging.config import IngestConfig  # noqa: E402
from p2med.imaging.dicom_header import read_header  # noqa: E402
from p2med.imaging.ingest import ingest_export  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "lung_pet_ct_dx_sample" / "Lung_Dx-A0001" / "series_2_5mm"


def synthetic_series(folder: Path, n: int = 40, matrix: int = 512) -> list[Path]:
    """A 40-slice 512x512 axial CT series (phantom HU, unsigned, intercept -1024), explicit VR little endian."""
    from p2med.synth.ct_phantom import CtPhantomConfig, render, sample_anatomy
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    cfg = CtPhantomConfig()
    an = sample_anatomy(np.random.default_rng(0), 8.0, cfg)
    z = an.z_start_mm + 5.0 * np.arange(n)
    hu = render(an, [], z, matrix=matrix, cfg=cfg).hu                       # [n, 512, 512] HU
    series, study = generate_uid(entropy_srcs=["bench-series"]), generate_uid(entropy_srcs=["bench-study"])
    folder.mkdir(parents=True, exist_ok=True)
    ps = an.fov_mm / matrix
    paths = []
    for k in range(n):
        ds = Dataset()
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.SOPInstanceUID = generate_uid(entropy_srcs=["bench", str(k)])
        ds.Modality, ds.SeriesDescription, ds.ConvolutionKernel = "CT", "Thorax 5.0 B70f", "B70f"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = study, series, 2, n - k
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-an.fov_mm / 2, -an.fov_mm / 2, round(float(z[k]), 3)]
        ds.PixelSpacing = [round(ps, 6), round(ps, 6)]
        ds.SliceThickness = 5.0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.Rows = ds.Columns = matrix
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = np.clip(np.rint(hu[k] + 1024), 0, 4095).astype("<u2").tobytes()
        meta = FileMetaDataset()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
        ds.file_meta = meta
        path = folder / f"IM{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def make_copies(files: list[Path], export: Path, k: int) -> list[list[Path]]:
    """K copies of a series in ``export/images/e<i>/``, copy i with its centre pixel's low byte raised by i + 1."""
    out = []
    for i in range(k):
        folder = export / "images" / f"e{i:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        copies = []
        for f in files:
            data = bytearray(f.read_bytes())
            h = read_header(f)
            off = h.pixel_offset + 2 * (h.rows // 2 * h.cols + h.cols // 2)
            data[off] = (data[off] + i + 1) % 256
            (folder / f.name).write_bytes(bytes(data))
            copies.append(folder / f.name)
        out.append(copies)
    write_jsonl(export / "exams.jsonl", [{"exam_id": f"e{i:03d}", "patient_id": f"p{i}", "modality": "CT",
                                          "files": [f"images/e{i:03d}"]} for i in range(k)])
    return out


def stock_volume(files: list[Path], size: int = 336, lo: float = -1100.0, hi: float = 100.0) -> np.ndarray:
    """The stock way: pydicom pixel_array + numpy HU and window + scikit-image resize, superior slice first."""
    from skimage.transform import resize

    dss = [pydicom.dcmread(f) for f in files]
    dss.sort(key=lambda d: -float(d.ImagePositionPatient[2]))
    out = []
    for ds in dss:
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        win = np.clip((hu - lo) / (hi - lo), 0.0, 1.0)
        out.append(resize(win, (size, size), order=1, anti_aliasing=True))
    return np.stack(out)


def decode_volume(files: list[Path]) -> list[np.ndarray]:
    return [pydicom.dcmread(f).pixel_array for f in files]


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the pool's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def best_rate(fn, n_volumes: int, reps: int) -> tuple[float, float]:
    """(volumes per wall-clock second, CPU seconds per volume), best of ``reps`` runs."""
    best, cpu = float("inf"), float("inf")
    for _ in range(reps):
        t, c = time.perf_counter(), _cpu()
        fn()
        best, cpu = min(best, time.perf_counter() - t), min(cpu, _cpu() - c)
    return n_volumes / best, cpu / n_volumes


def measure(name: str, files: list[Path], work: Path, k: int, reps: int, workers: int) -> dict:
    export = work / f"export_{name}"
    copies = make_copies(files, export, k)
    cfg = IngestConfig()
    stock = [stock_volume(c) for c in copies]                                # also warms the page cache
    stock_rate, stock_cpu = best_rate(lambda: [stock_volume(c) for c in copies], k, max(1, reps - 1))
    decode_rate, _ = best_rate(lambda: [decode_volume(c) for c in copies], k, reps)
    outs = []

    def ours() -> None:
        out = work / f"cache_{name}_{len(outs)}"
        outs.append(out)
        ingest_export(export, out, cfg, workers=workers, progress=False)

    ours_rate, ours_cpu = best_rate(ours, k, reps)
    cache = ImageCache(outs[-1])
    diff = 0.0
    for i, ref in enumerate(stock):
        (entry, arr), = cache.load(f"e{i:03d}")
        diff = max(diff, float(np.abs(arr.astype(np.float64) - ref).max()))
    for out in outs:
        shutil.rmtree(out, ignore_errors=True)
    res = {"slices": len(files), "copies": k, "ours_volumes_per_s": round(ours_rate, 3),
           "stock_volumes_per_s": round(stock_rate, 3), "decode_volumes_per_s": round(decode_rate, 3),
           "ratio_vs_stock": round(ours_rate / stock_rate, 2), "ratio_vs_decode": round(ours_rate / decode_rate, 2),
           "max_abs_diff": float(f"{diff:.3g}"), "ours_cpu_s_per_volume": round(ours_cpu, 4),
           "stock_cpu_s_per_volume": round(stock_cpu, 4), "cpu_ratio_vs_stock": round(stock_cpu / ours_cpu, 2)}
    print(f"{name}: {len(files)} slices x {k} copies: ours {ours_rate:.2f} vol/s (workers={workers}), "
          f"stock {stock_rate:.2f} vol/s, pydicom decode only {decode_rate:.2f} vol/s -> "
          f"{res['ratio_vs_stock']}x stock, {res['ratio_vs_decode']}x decode; max |ours - stock| = {diff:.2e}; "
          f"CPU per volume: ours {ours_cpu * 1000:.0f} ms (all processes), stock {stock_cpu * 1000:.0f} ms "
          f"-> {res['cpu_ratio_vs_stock']}x less")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=12, help="copies of each series (= volumes per timed run)")
    ap.add_argument("--reps", type=int, default=3, help="timed runs per method (best is reported)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="p2med-bench-ingest-"))
    try:
        synth = synthetic_series(work / "synthetic")
        result = measure("synthetic_40", synth, work, args.copies, args.reps, args.workers)
        if REAL.is_dir():
            real = sorted(REAL.glob("*.dcm"))
            result["real_64"] = measure("real_64", real, work, args.copies, args.reps, args.workers)
            result["max_abs_diff"] = max(result["max_abs_diff"], result["real_64"]["max_abs_diff"])
        else:
            print(f"{REAL} not found: only the synthetic series was measured")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
