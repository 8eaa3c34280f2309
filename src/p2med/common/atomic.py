"""Atomic file writes: write to a temp file in the same folder, fsync, then rename over the target.

A reader never sees a half-written file; a crash leaves either the old file or the new one.
Example: ``write_json(out / "manifest.json", {"files": []})``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None,
                fsync: bool = True) -> Iterator[IO]:
    """Open a temp file beside ``path``; on clean exit fsync it and rename it onto ``path``.

    ``fsync=False`` keeps readers from ever seeing a partial file but leaves durability to the caller (who
    fsyncs the file later, e.g. in batches, before recording it as done).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """Canonical JSON used for every output we write: sorted keys, UTF-8, stable floats."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=1)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, dumps_json(obj) + "\n")


def write_jsonl(path: str | os.PathLike, rows: Any) -> None:
    """Write an iterable of dicts as JSON lines (keys sorted, one object per line)."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
