"""Read, once per file, the DICOM header fields ingestion needs and where the pixel bytes start.

Fast path: a little-endian Part 10 file is walked by ``dicom_walker`` (only the tags in ``WANTED``, stopping
at Pixel Data, whose offset and length are recorded so the pixels can later be read without a second parse).
Anything the walker does not expect (no preamble, big endian, deflate, enhanced multi-frame, a bad VR) goes to
``pydicom.dcmread``, which stays the reference: ``read_header`` returns the same ``DicomHeader`` either way
(tests check field by field). A file that neither reads raises ``BadFile(code, text)``; a file that is not DICOM
at all returns None. It does not decode pixels (``pixels.py``) nor judge series (``ct_series.py``).
Example: ``h = read_header("S2/I0001.dcm")`` -> ``h.series_uid, h.position, h.pixel_offset``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pydicom
from pydicom.errors import InvalidDicomError

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
_FIRST_READ = 16384


class BadFile(Exception):
    """A file that cannot be used; ``code`` is the ledger reason code, ``text`` says why in words."""

    def __init__(self, code: str, text: str, path: str | None = None) -> None:
        super().__init__(f"{code}: {text}")
        self.code, self.text, self.path = code, text, path


# tag -> (field name, kind): str / uid (one value), text (decoded by the character set), strs (multi-valued),
# int (IS), num (first DS value), nums (all DS values), us (16-bit binary), flag (present or not)
WANTED: dict[int, tuple[str, str]] = {
    0x00080005: ("charset", "strs"), 0x00080008: ("image_type", "strs"), 0x00080016: ("sop_class", "uid"),
    0x00080018: ("sop_uid", "uid"), 0x00080060: ("modality", "str"), 0x00080068: ("presentation_intent", "str"),
    0x0008103E: ("series_description", "text"), 0x00180010: ("contrast_agent", "text"),
    0x00180015: ("body_part", "str"), 0x00180050: ("slice_thickness", "num"),
    0x00180088: ("spacing_between", "num"), 0x00181030: ("protocol_name", "text"),
    0x00181164: ("imager_pixel_spacing", "nums"), 0x00181210: ("kernel", "strs"),
    0x00185101: ("view_position", "str"), 0x0020000D: ("study_uid", "uid"), 0x0020000E: ("series_uid", "uid"),
    0x00200011: ("series_number", "int"), 0x00200012: ("acquisition_number", "int"),
    0x00200013: ("instance_number", "int"), 0x00200020: ("patient_orientation", "strs"),
    0x00200032: ("position", "nums"), 0x00200037: ("orientation", "nums"), 0x00280002: ("samples", "us"),
    0x00280004: ("photometric", "str"), 0x00280008: ("frames", "int"), 0x00280010: ("rows", "us"),
    0x00280011: ("cols", "us"), 0x00280030: ("pixel_spacing", "nums"), 0x00280100: ("bits_allocated", "us"),
    0x00280101: ("bits_stored", "us"), 0x00280103: ("pixel_representation", "us"),
    0x00281050: ("window_center", "nums"), 0x00281051: ("window_width", "nums"),
    0x00281052: ("rescale_intercept", "num"), 0x00281053: ("rescale_slope", "num"),
    0x00281056: ("voi_function", "str"), 0x00283000: ("has_modality_lut_seq", "flag"),
    0x00283010: ("has_voi_lut_seq", "flag"), 0x52009230: ("has_per_frame", "flag"),
}


@dataclass
class DicomHeader:
    """What ingestion reads from one file's header (None / empty when the tag is absent or unreadable)."""

    path: str
    reader: str = "walker"               # walker (fast path) | pydicom (fallback)
    transfer_syntax: str | None = None
    media_sop_class: str | None = None   # MediaStorageSOPClassUID of the file meta (what the file says it is)
    charset: tuple[str, ...] = ()
    sop_class: str | None = None
    sop_uid: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    modality: str | None = None
    presentation_intent: str | None = None
    series_number: int | None = None
    acquisition_number: int | None = None
    instance_number: int | None = None
    image_type: tuple[str, ...] = ()
    series_description: str = ""
    protocol_name: str = ""
    body_part: str | None = None
    kernel: tuple[str, ...] = ()
    contrast_agent: str = ""
    slice_thickness: float | None = None
    spacing_between: float | None = None
    view_position: str | None = None
    patient_orientation: tuple[str, ...] = ()
    position: tuple[float, ...] | None = None        # ImagePositionPatient (mm)
    orientation: tuple[float, ...] | None = None     # ImageOrientationPatient (row cosines, column cosines)
    pixel_spacing: tuple[float, ...] | None = None   # (row spacing = dy, column spacing = dx) mm
    imager_pixel_spacing: tuple[float, ...] | None = None
    rows: int | None = None
    cols: int | None = None
    samples: int | None = None
    frames: int | None = None
    photometric: str | None = None
    bits_allocated: int | None = None
    bits_stored: int | None = None
    pixel_representation: int | None = None
    window_center: tuple[float, ...] = ()
    window_width: tuple[float, ...] = ()
    voi_function: str | None = None
    rescale_intercept: float | None = None
    rescale_slope: float | None = None
    has_modality_lut_seq: bool = False
    has_voi_lut_seq: bool = False
    has_per_frame: bool = False
    has_pixels: bool = False
    pixel_offset: int | None = None      # file offset of the Pixel Data value (fast path only)
    pixel_length: int | None = None      # its length in bytes; None when encapsulated (compressed)
    frame_positions: list[tuple[float, ...]] = field(default_factory=list)  # enhanced multi-frame (pydicom)

    @property
    def is_image_class(self) -> bool:
        """Whether the SOP class (or the file meta's) is an image storage class."""
        names = (pydicom.uid.UID(u).name for u in (self.sop_class, self.media_sop_class) if u)
        return any("Image Storage" in name for name in names)

    @property
    def n_frames(self) -> int:
        return self.frames if self.frames and self.frames > 0 else 1

    @property
    def fast_pixels(self) -> bool:
        """Whether the stored values can be read straight from the file at ``pixel_offset``."""
        if self.pixel_offset is None or self.pixel_length is None or self.samples not in (None, 1):
            return False
        if self.bits_allocated not in (8, 16) or not self.rows or not self.cols:
            return False
        need = self.rows * self.cols * self.n_frames * (self.bits_allocated // 8)
        return self.pixel_length >= need


def read_header(path: str | os.PathLike) -> DicomHeader | None:
    """The header of ``path``; None when the file is not DICOM; ``BadFile`` when it is DICOM but unusable."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            buf = fh.read(_FIRST_READ)
            looks = _looks_like_dicom(buf)
            if looks is None:
                return None
            if looks == "part10":
                from .dicom_walker import Fallback, NeedMore, scan
                while True:
                    try:
                        return scan(buf, size, path)
                    except NeedMore:
                        if len(buf) >= size:
                            break
                        buf += fh.read(len(buf))
                    except Fallback:
                        break
    except OSError as exc:
        raise BadFile("unreadable", f"cannot open the file ({exc.strerror})") from exc
    return _read_with_pydicom(path, size)


def _looks_like_dicom(buf: bytes) -> str | None:
    """"part10" (preamble + DICM), "raw" (a bare dataset starting at group 0002 or 0008, either byte order)
    or None."""
    if len(buf) >= 132 and buf[128:132] == b"DICM":
        return "part10"
    if len(buf) >= 8 and buf[0:2] in (b"\x02\x00", b"\x08\x00") and buf[3:4] == b"\x00":
        return "raw"
    if len(buf) >= 8 and buf[0:2] in (b"\x00\x02", b"\x00\x08") and buf[2:3] == b"\x00":
        return "raw"
    return None


# ----------------------------------------------------------------------------------------------- pydicom path
def _read_with_pydicom(path: str, size: int) -> DicomHeader:
    """The reference reader for everything the walker declines; raises BadFile with the reason."""
    try:
        ds = pydicom.dcmread(path, force=True, defer_size=1024)
        header = header_from_dataset(ds, path)
    except InvalidDicomError as exc:
        raise BadFile("not_dicom", f"pydicom cannot read it as DICOM ({exc})") from exc
    except EOFError as exc:
        raise BadFile("truncated", f"the file ends inside the header ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on damaged files
        raise BadFile("unreadable", f"pydicom cannot parse the header ({type(exc).__name__}: {exc})") from exc
    return header


def header_from_dataset(ds: pydicom.Dataset, path: str) -> DicomHeader:
    """The same ``DicomHeader`` built from a pydicom dataset (used by the fallback and by tests)."""
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.TransferSyntaxUID) if meta is not None and "TransferSyntaxUID" in meta else None
    if ts is None:
        ts = IMPLICIT_LE if ds.is_implicit_VR else (EXPLICIT_LE if ds.is_little_endian else EXPLICIT_BE)
    media = None
    if meta is not None and "MediaStorageSOPClassUID" in meta:
        media = str(meta.MediaStorageSOPClassUID or "").strip() or None
    header = DicomHeader(path=path, reader="pydicom", transfer_syntax=ts, media_sop_class=media)
    for tag, (name, kind) in WANTED.items():
        elem = ds.get(tag)
        if elem is None:
            continue
        if kind == "flag":
            setattr(header, name, True)
            continue
        try:
            value = elem.value
        except Exception:  # noqa: BLE001 - a value pydicom cannot convert counts as absent
            continue
        setattr(header, name, _convert(value, kind))
    for name in ("window_center", "window_width"):
        if getattr(header, name) is None:
            setattr(header, name, ())
    for name in ("image_type", "kernel", "patient_orientation", "charset"):
        if getattr(header, name) is None:
            setattr(header, name, ())
    for name in ("series_description", "protocol_name", "contrast_agent"):
        if getattr(header, name) is None:
            setattr(header, name, "")
    header.has_pixels = "PixelData" in ds or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
    if header.has_per_frame:
        header.frame_positions = _frame_positions(ds)
        if header.orientation is None:
            header.orientation = _shared(ds, "PlaneOrientationSequence", "ImageOrientationPatient")
        if header.pixel_spacing is None:
            header.pixel_spacing = _shared(ds, "PixelMeasuresSequence", "PixelSpacing")
    return header


def _convert(value, kind: str):
    if value is None or value == "":
        return None if kind not in ("strs", "nums") else (() if kind == "strs" else None)
    if kind == "strs":
        seq = value if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
        return tuple(str(v).strip(" \0") for v in seq)
    if kind in ("num", "nums", "int"):
        seq = value if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
        try:
            nums = [float(v) for v in seq]
        except (TypeError, ValueError):
            return None
        if not nums:
            return None
        return tuple(nums) if kind == "nums" else (int(nums[0]) if kind == "int" else nums[0])
    if kind == "us":
        seq = value if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
        try:
            return int(seq[0])
        except (TypeError, ValueError, IndexError):
            return None
    text = str(value).strip(" \0")
    return text or (None if kind in ("str", "uid") else "")


def _frame_positions(ds: pydicom.Dataset) -> list[tuple[float, ...]]:
    out = []
    for item in ds.get("PerFrameFunctionalGroupsSequence", []) or []:
        try:
            pos = item.PlanePositionSequence[0].ImagePositionPatient
            out.append(tuple(float(v) for v in pos))
        except (AttributeError, IndexError, TypeError, ValueError):
            return []
    return out


def _shared(ds: pydicom.Dataset, group: str, attr: str) -> tuple[float, ...] | None:
    """A value of a functional group (shared first, else the first frame's), e.g. PixelMeasures PixelSpacing."""
    for seq_name in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        try:
            return tuple(float(v) for v in getattr(ds[seq_name][0][group][0], attr))
        except (KeyError, AttributeError, IndexError, TypeError, ValueError):
            continue
    return None
