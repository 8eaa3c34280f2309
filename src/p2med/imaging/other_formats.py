"""Research formats beside DICOM: NIfTI volumes (.nii, .nii.gz) and PNG / JPEG radiographs.

NIfTI is reoriented to the closest canonical (RAS+) axes with nibabel and returned in the same display order as
a DICOM CT stack: slices superior first, rows anterior first, columns from the patient's right; voxels are HU
unless the config says raw. PNG / JPEG are already display images: 8-bit values map to 0..1 by /255; 16-bit
ones get the percentile window; colour becomes luminance. They have no header, so no spacing and no view tag.
Example: ``vol, spacing, z = read_nifti(Path("ct.nii.gz"))`` -> float32 [Z, Y, X], (dz, dy, dx), [Z] mm.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ..common.optional import require
from .dicom_header import BadFile


def sniff(path: str | Path, head: bytes) -> str | None:
    """"png", "jpeg", "nifti" or None from the first bytes (and the .nii / .nii.gz name for NIfTI)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    name = Path(path).name.lower()
    if name.endswith(".nii") and len(head) >= 348 and head[344:348] in (b"n+1\0", b"ni1\0"):
        return "nifti"
    if name.endswith(".nii") and len(head) >= 8 and head[4:8] in (b"n+2\0", b"ni2\0"):
        return "nifti"
    if name.endswith(".nii.gz") and head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(path, "rb") as fh:
                inner = fh.read(348)
        except (OSError, EOFError):
            return None
        if inner[344:348] in (b"n+1\0", b"ni1\0") or inner[4:8] in (b"n+2\0", b"ni2\0"):
            return "nifti"
    return None


def read_raster(path: str | Path) -> tuple[np.ndarray, int]:
    """A PNG/JPEG as float32 [H, W] and its bit depth (8 or 16)."""
    image_mod = require("PIL.Image", "dicom")
    try:
        with image_mod.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float32)
                bits = 16
            else:
                arr = np.asarray(im.convert("L"), dtype=np.float32)
                bits = 8
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on damaged files
        raise BadFile("decode_failed", f"the image does not decode ({type(exc).__name__}: {exc})") from exc
    if arr.ndim != 2 or min(arr.shape) < 2:
        raise BadFile("unsupported", f"image of shape {list(arr.shape)} is not a 2-D picture")
    return arr, bits


def read_nifti(path: str | Path) -> tuple[np.ndarray, tuple[float, float, float], list[float]]:
    """A NIfTI volume as float32 [Z, Y, X] in display order, its (dz, dy, dx) mm and each slice's z (mm)."""
    nib = require("nibabel", "dicom")
    try:
        img = nib.as_closest_canonical(nib.load(str(path)))
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types on damaged files
        raise BadFile("decode_failed", f"NIfTI does not load ({type(exc).__name__}: {exc})") from exc
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise BadFile("unsupported", f"NIfTI of shape {list(data.shape)} is not a 3-D volume")
    dx, dy, dz = (float(v) for v in img.header.get_zooms()[:3])
    vol = np.ascontiguousarray(data[::-1, ::-1, ::-1].transpose(2, 1, 0))       # [Z, Y, X] display order
    k = np.arange(data.shape[2])[::-1]                                          # display order: superior first
    a = img.affine
    z = a[2, 0] * (data.shape[0] - 1) / 2 + a[2, 1] * (data.shape[1] - 1) / 2 + a[2, 2] * k + a[2, 3]
    return vol, (dz, dy, dx), [float(v) for v in z]                             # z of each slice's centre
