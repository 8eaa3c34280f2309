"""The fast path of ``dicom_header``: walk a little-endian Part 10 file's header with ``struct``.

Only the tags in ``dicom_header.WANTED`` are kept, decoded as pydicom would; sequences are skipped (their items
walked when of undefined length); the walk stops at Pixel Data and records where its value starts. It raises
``NeedMore`` when the header runs past the bytes read so far (the caller reads more and starts again),
``Fallback`` for anything it does not handle (big endian, deflate, enhanced multi-frame, an undefined-length UN,
a byte pair that is not a VR: pydicom decides), and ``BadFile("truncated", ...)`` when the file ends inside its
header or pixel data. Example: ``scan(first_16k_bytes, file_size, "S2/I0001.dcm")`` -> ``DicomHeader``.
"""

from __future__ import annotations

import struct

from pydicom.charset import convert_encodings, decode_bytes

from .dicom_header import DEFLATED, EXPLICIT_BE, IMPLICIT_LE, WANTED, BadFile, DicomHeader

_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_ALL_VRS = _LONG_VRS | {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
                        b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
_PIXEL_DATA = 0x7FE00010
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD


class Fallback(Exception):
    """The walker met something it does not handle; pydicom reads the file instead."""


class NeedMore(Exception):
    """The walker ran past the bytes read so far (the header is longer than the first read)."""


_IMPL = struct.Struct("<HHI").unpack_from     # group, element, 32-bit length
_EXPL = struct.Struct("<HH2sH").unpack_from   # group, element, VR, 16-bit length
_U32 = struct.Struct("<I").unpack_from
_U16 = struct.Struct("<H").unpack_from


def scan(buf: bytes, size: int, path: str) -> DicomHeader:
    pos = 132
    ts = media = None
    n = len(buf)
    while True:                                           # file meta group: always explicit VR little endian
        if pos + 12 > n and n < size:
            raise NeedMore
        if pos + 8 > n:
            raise BadFile("truncated", "the file ends inside its meta header")
        if _U16(buf, pos)[0] != 0x0002:
            break
        tag, length, hdr = _explicit_element(buf, pos)
        if pos + hdr + length > n:
            if n < size:
                raise NeedMore
            raise BadFile("truncated", "the file ends inside its meta header")
        if tag == 0x00020010:
            ts = buf[pos + hdr:pos + hdr + length].decode("ascii", "replace").strip(" \0")
        elif tag == 0x00020002:
            media = buf[pos + hdr:pos + hdr + length].decode("ascii", "replace").strip(" \0") or None
        pos += hdr + length
    if ts is None or ts in (EXPLICIT_BE, DEFLATED):
        raise Fallback
    implicit = ts == IMPLICIT_LE
    header = DicomHeader(path=path, transfer_syntax=ts, media_sop_class=media)
    raw: dict[str, bytes] = {}
    while pos < size:                                     # the dataset, inlined for speed (~100 elements/file)
        if pos + 12 > n:
            if pos + 8 > size:
                raise BadFile("truncated", "the file ends inside a header element")
            if n < size:
                raise NeedMore
        if implicit:
            group, elem, length = _IMPL(buf, pos)
            hdr = 8
        else:
            group, elem, vr, length = _EXPL(buf, pos)
            if group == 0xFFFE:
                length, hdr = _U32(buf, pos + 4)[0], 8
            elif vr in _LONG_VRS:
                if pos + 12 > n:
                    raise NeedMore if n < size else Fallback
                length, hdr = _U32(buf, pos + 8)[0], 12
            elif vr in _ALL_VRS:
                hdr = 8
            else:
                raise Fallback                          # not a VR: pydicom decides what the file is
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
                raise Fallback                          # undefined-length UN holds implicit VR: let pydicom
            want = WANTED.get(tag)
            if want is not None and want[1] == "flag":
                raw[want[0]] = b"1"
            pos = _skip_undefined(buf, pos + hdr, implicit)
            n = len(buf)
            continue
        end = pos + hdr + length
        if end > size:
            raise BadFile("truncated", f"header element ({group:04X},{elem:04X}) claims {length} bytes; the file "
                                       f"ends {size - pos - hdr} bytes after its start")
        want = WANTED.get(tag)
        if want is not None:
            if end > n:
                raise NeedMore
            raw[want[0]] = buf[pos + hdr:end]
        pos = end
    if "has_per_frame" in raw:
        raise Fallback                                  # enhanced multi-frame: per-frame positions via pydicom
    _fill(header, raw)
    return header


def _explicit_element(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, value length, header length) of the explicit-VR element at ``pos``."""
    if pos + 8 > len(buf):
        raise NeedMore
    group, elem, vr, length = _EXPL(buf, pos)
    tag = (group << 16) | elem
    if group == 0xFFFE:
        return tag, _U32(buf, pos + 4)[0], 8
    if vr in _LONG_VRS:
        if pos + 12 > len(buf):
            raise NeedMore
        return tag, _U32(buf, pos + 8)[0], 12
    if vr not in _ALL_VRS:
        raise Fallback
    return tag, length, 8


def _skip_undefined(buf: bytes, pos: int, implicit: bool) -> int:
    """Skip the items of an undefined-length sequence starting at ``pos``; return the position after it."""
    while True:
        if pos + 8 > len(buf):
            raise NeedMore
        tag = (struct.unpack_from("<H", buf, pos)[0] << 16) | struct.unpack_from("<H", buf, pos + 2)[0]
        length = struct.unpack_from("<I", buf, pos + 4)[0]
        pos += 8
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise Fallback
        if length != _UNDEFINED:
            pos += length
            continue
        while True:                                      # an undefined-length item: walk its elements
            if pos + 8 > len(buf):
                raise NeedMore
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
    kinds = {name: kind for name, kind in WANTED.values()}
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
