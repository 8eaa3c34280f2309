"""The ingest cache: content-addressed float16 arrays plus ``exams.jsonl``, read by curation, training and serving.

``CACHE/arrays/ab/<sha256>.npy`` holds one image [S, H, W] float16 in 0..1; ``<sha256>`` is the hash of the
whole ``.npy`` file, ``ab`` its first two hex digits. Files are written atomically (temp file in the same
folder, fsync, rename) and never rewritten: the same content lands at the same name. ``exams.jsonl`` has one
line per exam with its ImageEntry list (format: docs/ingest-cache.md). ``ImageCache`` reads it.
Example::

    cache = ImageCache("runs/cache")
    for entry, arr in cache.load("CT2305151234"):     # arr float32 [S, H, W]
        print(entry["role"], arr.shape, entry["true_slices"])
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from ..common.atomic import atomic_open, sha256_file
from ..common.errors import P2MedError

EXAMS = "exams.jsonl"
ARRAYS = "arrays"


class CacheError(P2MedError, ValueError):
    pass


_SHIFT, _ONE, _ROUND, _REBIAS = np.int32(13), np.int32(1), np.int32(0x0FFF), np.int32(0x1C000)
_NORMAL_MIN = np.uint32(0x38800000 - 1)


def to_float16(y: np.ndarray, out: np.ndarray | None = None, scratch: np.ndarray | None = None) -> np.ndarray:
    """float32 -> float16 clamped to [0, 1]: bit-identical to ``np.clip(y, 0, 1).astype(np.float16)`` (except
    that -0.0 becomes +0.0), ~4x faster.

    NumPy's float16 cast is a scalar loop here; this is the classic round-to-nearest-even on the float32 bits
    (add 0xFFF plus the lowest kept bit, drop 13 mantissa bits, clamp, rebias the exponent) in vectorised int32
    ops, in place in ``scratch`` (int32 of y's shape; allocated when None: reuse it, fresh pages cost as much as
    the maths). Negative values stay negative as integers, so the clamp takes them to 0. The rare values below
    float16's normal range (0 < y < 2**-14, found by one min over ``bits - 1``) are rounded exactly on the side.
    """
    out = np.empty(y.shape, np.float16) if out is None else out
    y = np.ascontiguousarray(y, np.float32)
    b = y.view(np.int32)
    t = np.empty(y.shape, np.int32) if scratch is None else scratch
    np.subtract(b.view(np.uint32), np.uint32(1), out=t.view(np.uint32))        # 0 and negatives wrap high
    tiny = None
    if t.size and t.view(np.uint32).min() < _NORMAL_MIN:                        # some 0 < y < 2**-14
        tiny = np.flatnonzero(np.less(t.view(np.uint32), _NORMAL_MIN))
    np.right_shift(b, _SHIFT, out=t)
    np.bitwise_and(t, _ONE, out=t)
    np.add(t, b, out=t)
    np.add(t, _ROUND, out=t)                                   # no overflow: finite floats are < 0x7F800000
    np.right_shift(t, _SHIFT, out=t)                           # float32 exponent + 10 mantissa bits, rounded
    np.clip(t, _REBIAS, _REBIAS + 0x3C00, out=t)               # [0, 1] in float16 terms once rebiased
    if tiny is not None:                                       # subnormal float16: units of 2**-24
        t.flat[tiny] = np.rint(y.flat[tiny].astype(np.float64) * 2.0**24).astype(np.int32) + _REBIAS
    np.subtract(t, _REBIAS, out=out.view(np.uint16), casting="unsafe")
    return out


def npy_bytes_header(arr: np.ndarray) -> bytes:
    """The .npy (format 1.0) header ``np.save`` writes for ``arr`` (C order)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(arr))
    return buf.getvalue()


def write_array(cache_dir: str | os.PathLike, arr: np.ndarray, durable: bool = True) -> tuple[str, str]:
    """Store ``arr`` [S, H, W] as float16 .npy under its sha256; returns (relative path, sha256).

    ``durable=False`` skips the fsync (the ingest driver fsyncs an exam's arrays in its main process before it
    journals the exam, so the workers never wait for the disk). An existing file of that name is kept only if
    its content really has that hash (a crash may have left a renamed file that never reached the disk).
    """
    a16 = np.ascontiguousarray(arr, dtype=np.float16)
    head = npy_bytes_header(a16)
    data = memoryview(a16).cast("B")
    h = hashlib.sha256(head)
    h.update(data)
    sha = h.hexdigest()
    rel = f"{ARRAYS}/{sha[:2]}/{sha}.npy"
    path = Path(cache_dir) / rel
    if path.is_file() and path.stat().st_size == len(head) + a16.nbytes and sha256_file(path) == sha:
        return rel, sha
    with atomic_open(path, "wb", fsync=durable) as fh:
        fh.write(head)
        fh.write(data)
    return rel, sha


def sync(paths: list[Path]) -> None:
    """fsync files written with ``durable=False``."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_exams(path: str | os.PathLike) -> dict[str, dict]:
    """exam_id -> exam record of an ``exams.jsonl``."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CacheError(f"{EXAMS}:{i}: not valid JSON ({exc.msg})") from exc
            out[row["exam_id"]] = row
    return out


class ImageCache:
    """Read access to an ingest cache folder (``p2med ingest --out CACHE``)."""

    def __init__(self, cache_dir: str | os.PathLike) -> None:
        self.root = Path(cache_dir)
        index = self.root / EXAMS
        if not index.is_file():
            raise CacheError(f"{self.root} is not an ingest cache: {EXAMS} is missing (run p2med ingest first)")
        self._exams = read_exams(index)

    def exam_ids(self) -> list[str]:
        return sorted(self._exams)

    def exam(self, exam_id: str) -> dict | None:
        """The exam's record ``{"exam_id", "modality", "images": [ImageEntry...], "warnings"}``, or None."""
        return self._exams.get(exam_id)

    def array(self, entry: dict, verify: bool = False) -> np.ndarray:
        """The image of one ImageEntry as float32 [S, H, W] (``verify`` re-hashes the file first)."""
        path = self.root / entry["array"]
        if verify:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != entry["sha256"]:
                raise CacheError(f"{entry['array']}: content does not match its sha256 (the cache is damaged)")
        arr = np.load(path, allow_pickle=False)
        if list(arr.shape) != list(entry["shape"]):
            raise CacheError(f"{entry['array']}: shape {list(arr.shape)} but the entry says {entry['shape']}")
        return arr.astype(np.float32)

    def load(self, exam_id: str, verify: bool = False) -> list[tuple[dict, np.ndarray]]:
        """Every image of the exam, in the entry order (frontal, lateral / nc, ce); [] for an unknown exam."""
        record = self._exams.get(exam_id)
        if record is None:
            return []
        return [(entry, self.array(entry, verify)) for entry in record["images"]]
