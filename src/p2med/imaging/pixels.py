"""Stored pixel values of DICOM frames, read straight from the file where the bytes are plain.

Uncompressed little-endian files (``DicomHeader.fast_pixels``) are read with one unbuffered ``readinto`` at the
Pixel Data offset the header walk recorded: no second parse, no copy through pydicom or a file buffer. Everything
else (JPEG baseline and lossless, JPEG-LS, JPEG 2000, RLE, deflate, big endian, 1/32-bit, colour) decodes with
pydicom's ``pixel_array`` (pylibjpeg / openjpeg plugins for the compressed ones). Values equal pydicom's, bit
for bit: high bits are masked or sign-extended from BitsStored. Colour images become luminance (float32). It
does not window or resize.
Example: ``frames = read_frames(header)`` -> uint16/int16 [F, H, W].
"""

from __future__ import annotations

import numpy as np
import pydicom

from .dicom_header import BadFile, DicomHeader
from .window import fix_stored


def stored_dtype(h: DicomHeader) -> np.dtype:
    """The little-endian dtype of the stored values of a fast-path file."""
    signed = h.pixel_representation == 1
    return np.dtype(f"<{'i' if signed else 'u'}{h.bits_allocated // 8}")


def read_frames(h: DicomHeader, frames: list[int] | None = None) -> np.ndarray:
    """Frames ``frames`` (default all) of one file as [F, H, W] stored values (float32 for colour images)."""
    if h.fast_pixels:
        n = h.n_frames
        wanted = list(range(n)) if frames is None else frames
        out = np.empty((len(wanted), h.rows, h.cols), stored_dtype(h))
        for i, f in enumerate(wanted):
            read_frame_into(h, f, out[i])
        return out
    arr = decode_with_pydicom(h)
    return arr if frames is None else arr[frames]


def read_frame_into(h: DicomHeader, frame: int, out: np.ndarray) -> None:
    """Read frame ``frame`` of a fast-path file into ``out`` ([H, W] of ``stored_dtype(h)``), then fix bits."""
    nbytes = out.nbytes
    view = memoryview(out).cast("B")
    got = 0
    try:
        with open(h.path, "rb", buffering=0) as fh:           # unbuffered: read(2) straight into ``out``
            fh.seek(h.pixel_offset + frame * nbytes)
            while got < nbytes:
                n = fh.readinto(view[got:])
                if not n:
                    break
                got += n
    except OSError as exc:
        raise BadFile("unreadable", f"cannot read the pixel data ({exc.strerror})", h.path) from exc
    if got != nbytes:
        raise BadFile("truncated", f"frame {frame} needs {nbytes} bytes of pixel data, the file has {got}", h.path)
    fix_stored(out, h.bits_stored, h.pixel_representation == 1)


def decode_with_pydicom(h: DicomHeader) -> np.ndarray:
    """Decode every frame with pydicom -> [F, H, W] (stored values; colour -> float32 luminance)."""
    try:
        ds = pydicom.dcmread(h.path, force=True)
        if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
            raise BadFile("no_pixels", "the file has no pixel data", h.path)
        arr = ds.pixel_array
    except BadFile:
        raise
    except (NotImplementedError, RuntimeError) as exc:
        raise BadFile("decode_failed", f"cannot decode {_syntax(h)} pixel data "
                                       f"({type(exc).__name__}: {_first_line(exc)})", h.path) from exc
    except Exception as exc:  # noqa: BLE001 - damaged pixel data raises many types inside the decoders
        raise BadFile("decode_failed", f"pixel data of {_syntax(h)} does not decode "
                                       f"({type(exc).__name__}: {_first_line(exc)})", h.path) from exc
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if samples == 3:
        arr = arr if frames > 1 else arr[None]
        arr = (arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114).astype(np.float32)
    elif samples != 1:
        raise BadFile("unsupported", f"{samples} samples per pixel (only grey and RGB images are used)", h.path)
    elif arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1] < 2 or arr.shape[2] < 2:
        raise BadFile("unsupported", f"pixel array of shape {list(arr.shape)} is not an image", h.path)
    return arr


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else "no message"


def _syntax(h: DicomHeader) -> str:
    name = pydicom.uid.UID(h.transfer_syntax).name if h.transfer_syntax else "unknown transfer syntax"
    return f"'{name}'"
