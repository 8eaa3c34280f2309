"""Tiny real DICOM files for the imaging tests: CT series and radiographs written with pydicom in code.

Every slice of a ``ct_series`` carries its own marker (slice k of the volume, counted from the top, holds HU
``marker_hu(k)`` in a square at its centre), so a test can tell whether the slices came out in the right order.
Example: ``ct_series(tmp_path / "s2", n=8)`` -> 8 files, ImagePositionPatient z = 0, -5, ..., superior first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

CT_SOP = "1.2.840.10008.5.1.4.1.1.2"
DX_SOP = "1.2.840.10008.5.1.4.1.1.1.1"


def marker_hu(k: int) -> float:
    """HU of slice k's central marker (distinct per slice, inside the -1100..100 window)."""
    return -1000.0 + 40.0 * k


def ct_volume(n: int, size: int) -> np.ndarray:
    """HU [n, size, size]: air outside a body disc, lung inside, and slice k's marker square at the centre."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    base = np.where(r < size * 0.45, -800.0, -1000.0).astype(np.float32)
    vol = np.repeat(base[None], n, axis=0)
    c, h = size // 2, max(2, size // 8)
    for k in range(n):
        vol[k, c - h:c + h, c - h:c + h] = marker_hu(k)
    return vol


def _save(ds: Dataset, path: Path, syntax: str) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True, implicit_vr=syntax == ImplicitVRLittleEndian, little_endian=True)
    return path


def ct_series(folder: Path, n: int = 8, size: int = 64, *, z0: float = 0.0, dz: float = 5.0,
              kernel: str = "B70f", description: str = "Thorax 5.0 B70f", thickness: float | None = 5.0,
              contrast: bool = False, signed: bool = False, intercept: float = -1024.0,
              orientation=(1, 0, 0, 0, 1, 0), syntax: str = ExplicitVRLittleEndian, instances: str = "ascending",
              series_number: int = 2, image_type=("ORIGINAL", "PRIMARY", "AXIAL"), hu: np.ndarray | None = None,
              seed: str = "s", names: str = "I{inst:04d}.dcm", study_uid: str | None = None) -> list[Path]:
    """Write a series (slice k at z0 - k * dz along the normal's axis: z for axial, superior first); its files."""
    hu = ct_volume(n, size) if hu is None else hu
    series_uid = generate_uid(entropy_srcs=["series", seed])
    study_uid = study_uid or generate_uid(entropy_srcs=["study", seed])
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    normal = np.cross(row, col)
    paths = []
    for k in range(n):
        inst = k + 1 if instances == "ascending" else n - k
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID, ds.SOPInstanceUID = CT_SOP, generate_uid(entropy_srcs=["sop", seed, str(k)])
        ds.Modality, ds.StudyInstanceUID, ds.SeriesInstanceUID = "CT", study_uid, series_uid
        ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = series_number, inst, description
        ds.ImageType = list(image_type)
        if kernel:
            ds.ConvolutionKernel = kernel
        if thickness is not None:
            ds.SliceThickness = thickness
        if contrast:
            ds.ContrastBolusAgent = "Iohexol"
        ds.ImageOrientationPatient = list(orientation)
        origin = np.array([-100.0, -100.0, 0.0])
        origin[int(np.argmax(np.abs(normal)))] += z0 - k * dz        # slices step along the normal's axis
        ds.ImagePositionPatient = [round(float(v), 3) for v in origin]
        ds.PixelSpacing = [0.7, 0.7]
        ds.RescaleSlope, ds.RescaleIntercept = 1, intercept
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16 if signed else 12, 15 if signed else 11
        ds.PixelRepresentation = int(signed)
        stored = np.rint(hu[k] - intercept)
        stored = np.clip(stored, -32768, 32767) if signed else np.clip(stored, 0, 4095)
        ds.PixelData = stored.astype("<i2" if signed else "<u2").tobytes()
        paths.append(_save(ds, folder / names.format(inst=inst, k=k), syntax))
    return paths


def radiograph(path: Path, image: np.ndarray, *, bits: int = 12, monochrome1: bool = False,
               view_position: str | None = None, orientation: tuple[str, str] | None = None,
               description: str = "", window: tuple[float, float] | None = None, modality: str = "DX",
               syntax: str = ExplicitVRLittleEndian, series_number: int = 1, seed: str = "x") -> Path:
    """Write a radiograph whose display image is ``image`` (0..1, 1 = white) as stored values."""
    top = 2**bits - 1
    v = np.rint(np.clip(image, 0, 1) * top).astype(np.uint16)
    stored = top - v if monochrome1 else v
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = DX_SOP, generate_uid(entropy_srcs=["xr", seed, str(path)])
    ds.Modality, ds.StudyInstanceUID = modality, generate_uid(entropy_srcs=["xr-study", seed])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["xr-series", seed, str(series_number)])
    ds.SeriesNumber, ds.InstanceNumber = series_number, 1
    if view_position is not None:
        ds.ViewPosition = view_position
    if orientation is not None:
        ds.PatientOrientation = list(orientation)
    if description:
        ds.SeriesDescription = description
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelSpacing = [0.2, 0.2]
    ds.Rows, ds.Columns = image.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
    ds.PixelData = stored.astype("<u2").tobytes()
    return _save(ds, path, syntax)


def chest_like(h: int = 200, w: int = 180, lateral: bool = False, seed: int = 0) -> np.ndarray:
    """A crude display image: bright body, two dark lungs beside a bright mediastinum (frontal) or one lung."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w] / np.array([h, w])[:, None, None]
    img = np.where(np.abs(xx - 0.5) < 0.42, 0.75, 0.05)
    if lateral:
        img = np.where((np.abs(xx - 0.45) < 0.22) & (np.abs(yy - 0.45) < 0.25), 0.2, img)
        img = np.where(np.abs(xx - 0.85) < 0.05, 0.95, img)            # the spine at the back
    else:
        for cx in (0.3, 0.7):
            img = np.where((np.abs(xx - cx) < 0.12) & (np.abs(yy - 0.45) < 0.25), 0.2, img)
    return np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1)
