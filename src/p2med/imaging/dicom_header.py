"""Read, once per file, the DICOM header fields ingestion needs and where the pixel bytes start.

Fast path: a little-endian Part 10 file (implicit or explicit VR, uncompressed or encapsulated) is walked element
by element with ``struct``, keeping only the tags in ``_WANTED`` and stopping at Pixel Data, whose offset and
length are recorded so the pixels can later be read without a second parse. Anything the walker does not
expect (no preamble, big endian, deflate, an undefined-length UN, a bad VR, lengths past the end) goes to
``pydicom.dcmread``, which stays the reference: ``read_header`` returns the same ``DicomHeader`` either way
(tests check field by field). A file that neither reads raises ``BadFile(code, text)``; a file that is not DICOM
at all returns None. It does not decode pixels (``pixels.py``) nor judge series (``ct_series.py``).
Example: ``h = read_header("S2/I0001.dcm")`` -> ``h.series_uid, h.position, h.pixel_offset``.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

import pydicom
from pydicom.charset import convert_encodings, decode_bytes
from pydicom.errors import InvalidDicomError

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
UNCOMPRESSED = (IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE, DEFLATED)
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_ALL_VRS = _LONG_VRS | {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
                        b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
_PIXEL_DATA = 0x7FE00010
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_FIRST_READ = 16384


class BadFile(Exception):
    """A file that cannot be used; ``code`` is the ledger reason code, ``text`` says why in words."""

    def __init__(self, code: str, text: str, path: str | None = None) -> None:
        super().__init__(f"{code}: {text}")
        self.code, self.text, self.path = code, text, path


class _Fallback(Exception):
    """The fast walker met something it does not handle; pydicom reads the file instead."""


class _NeedMore(Exception):
    """The walker ran past the bytes read so far (the header is longer than the first read)."""


# tag -> (field name, kind); kinds: str, strs (multi-valued text), num (DS/IS first value), nums, us, flag
_WANTED: dict[int, tuple[str, str]] = {
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
                while True:
                    try:
                        return _scan(buf, size, path)
                    except _NeedMore:
                        if len(buf) >= size:
                            break
                        buf += fh.read(len(buf))
                    except _Fallback:
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


# ----------------------------------------------------------------------------------------------- fast walker
_IMPL = struct.Struct("<HHI").unpack_from     # group, element, 32-bit length
_EXPL = struct.Struct("<HH2sH").unpack_from   # group, element, VR, 16-bit length
_U32 = struct.Struct("<I").unpack_from
_U16 = struct.Struct("<H").unpack_from


def _scan(buf: bytes, size: int, path: str) -> DicomHeader:
    pos = 132
    ts = media = None
    n = len(buf)
    while True:                                           # file meta group: always explicit VR little endian
        if pos + 12 > n and n < size:
            raise _NeedMore
        if pos + 8 > n:
            raise BadFile("truncated", "the file ends inside its meta header")
        if _U16(buf, pos)[0] != 0x0002:
            break
        tag, length, hdr = _explicit_element(buf, pos)
        if pos + hdr + length > n:
            if n < size:
                raise _NeedMore
            raise BadFile("truncated", "the file ends inside its meta header")
        if tag == 0x00020010:
            ts = buf[pos + hdr:pos + hdr + length].decode("ascii", "replace").strip(" \0")
        elif tag == 0x00020002:
            media = buf[pos + hdr:pos + hdr + length].decode("ascii", "replace").strip(" \0") or None
        pos += hdr + length
    if ts is None or ts in (EXPLICIT_BE, DEFLATED):
        raise _Fallback
    implicit = ts == IMPLICIT_LE
    header = DicomHeader(path=path, transfer_syntax=ts, media_sop_class=media)
    raw: dict[str, bytes] = {}
    while pos < size:                                     # the dataset, inlined for speed (~100 elements/file)
        if pos + 12 > n:
            if pos + 8 > size:
                raise BadFile("truncated", "the file ends inside a header element")
            if n < size:
                raise _NeedMore
        if implicit:
            group, elem, length = _IMPL(buf, pos)
            hdr = 8
        else:
            group, elem, vr, length = _EXPL(buf, pos)
            if group == 0xFFFE:
                length, hdr = _U32(buf, pos + 4)[0], 8
            elif vr in _LONG_VRS:
                if pos + 12 > n:
                    raise _NeedMore if n < size else _Fallback
                length, hdr = _U32(buf, pos + 8)[0], 12
            elif vr in _ALL_VRS:
                hdr = 8
            else:
                raise _Fallback                          # not a VR: pydicom decides what the file is
        tag = (group << 16) | elem
        if tag == _PIXEL_DATA:
            header.has_pixels = True
            header.pixel_offset = pos + hdr
            header.pixel_length = None if length == _UNDEFINED else length
            if length != _UNDEFINED and pos + hdr + length > size:
                raise BadFile("truncated", f"pixel data needs {length} bytes but the file ends "
                                           f"{size - pos - hdr} bytes after its start")
            break
        if length == _UNDEFINED:
            if not implicit and vr == b"UN":
                raise _Fallback                          # undefined-length UN holds implicit VR: let pydicom
            want = _WANTED.get(tag)
            if want is not None and want[1] == "flag":
                raw[want[0]] = b"1"
            pos = _skip_undefined(buf, pos + hdr, implicit)
            n = len(buf)
            continue
        end = pos + hdr + length
        if end > size:
            raise BadFile("truncated", f"header element ({group:04X},{elem:04X}) claims {length} bytes; the file "
                                       f"ends {size - pos - hdr} bytes after its start")
        want = _WANTED.get(tag)
        if want is not None:
            if end > n:
                raise _NeedMore
            raw[want[0]] = buf[pos + hdr:end]
        pos = end
    if "has_per_frame" in raw:
        raise _Fallback                                  # enhanced multi-frame: per-frame positions via pydicom
    _fill(header, raw)
    return header


def _explicit_element(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, value length, header length) of the explicit-VR element at ``pos``."""
    if pos + 8 > len(buf):
        raise _NeedMore
    group, elem, vr, length = _EXPL(buf, pos)
    tag = (group << 16) | elem
    if group == 0xFFFE:
        return tag, _U32(buf, pos + 4)[0], 8
    if vr in _LONG_VRS:
        if pos + 12 > len(buf):
            raise _NeedMore
        return tag, _U32(buf, pos + 8)[0], 12
    if vr not in _ALL_VRS:
        raise _Fallback
    return tag, length, 8


def _skip_undefined(buf: bytes, pos: int, implicit: bool) -> int:
    """Skip the items of an undefined-length sequence starting at ``pos``; return the position after it."""
    while True:
        if pos + 8 > len(buf):
            raise _NeedMore
        tag = (struct.unpack_from("<H", buf, pos)[0] << 16) | struct.unpack_from("<H", buf, pos + 2)[0]
        length = struct.unpack_from("<I", buf, pos + 4)[0]
        pos += 8
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise _Fallback
        if length != _UNDEFINED:
            pos += length
            continue
        while True:                                      # an undefined-length item: walk its elements
            if pos + 8 > len(buf):
                raise _NeedMore
            if implicit:
                tag = (struct.unpack_from("<H", buf, pos)[0] << 16) | struct.unpack_from("<H", buf, pos + 2)[0]
                length, hdr = struct.unpack_from("<I", buf, pos + 4)[0], 8
            else:
                tag, length, hdr = _explicit_element(buf, pos)
            if tag == _ITEM_END:
                pos += 8
                break
            pos = _skip_undefined(buf, pos + hdr, implicit) if length == _UNDEFINED else pos + hdr + length


def _fill(header: DicomHeader, raw: dict[str, bytes]) -> None:
    """Decode the raw values of the wanted tags the way pydicom would (text by the file's character set)."""
    kinds = {name: kind for name, kind in _WANTED.values()}
    charset = tuple(_split(raw.get("charset", b"")))
    header.charset = charset
    encodings = None
    for name, value in raw.items():
        kind = kinds[name]
        if kind == "flag":
            setattr(header, name, True)
        elif kind == "us":
            setattr(header, name, struct.unpack_from("<H", value)[0] if len(value) >= 2 else None)
        elif kind == "text":
            if encodings is None:
                encodings = _encodings(charset)
            setattr(header, name, decode_bytes(value, encodings, set()).strip(" \0"))
        elif kind in ("str", "uid"):
            text = value.decode("ascii", "replace").strip(" \0")
            setattr(header, name, text or None)
        elif kind == "strs":
            setattr(header, name, tuple(_split(value)))
        elif kind == "int":
            setattr(header, name, _int(value.decode("ascii", "replace")))
        elif kind == "num":
            nums = _nums(value.decode("ascii", "replace"))
            setattr(header, name, nums[0] if nums else None)
        elif kind == "nums":
            nums = _nums(value.decode("ascii", "replace"))
            setattr(header, name, tuple(nums) if nums else None)
    for name in ("window_center", "window_width"):
        if getattr(header, name) is None:
            setattr(header, name, ())


def _encodings(charset: tuple[str, ...]) -> list[str]:
    try:
        return convert_encodings(list(charset) or None)
    except Exception:  # noqa: BLE001 - pydicom raises several types for unknown character sets
        return convert_encodings(None)


def _split(value: bytes) -> list[str]:
    text = value.decode("ascii", "replace").strip(" \0")
    return [p.strip(" \0") for p in text.split("\\")] if text else []


def _nums(text: str) -> list[float]:
    out = []
    for part in text.strip(" \0").split("\\"):
        try:
            out.append(float(part))
        except ValueError:
            return []
    return out


def _int(text: str) -> int | None:
    try:
        return int(float(text.strip(" \0")))
    except ValueError:
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
    for tag, (name, kind) in _WANTED.items():
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
