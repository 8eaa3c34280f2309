"""Read the input files of public datasets without stopping at the first bad line.

Every reader yields ``(where, item)``: ``where`` is the ledger source of one input object (``file.jsonl:17``
for a line, ``file.csv:5`` for the CSV record that starts on line 5, ``file.json[3]`` for an element of a
top-level JSON array) and ``item`` the parsed object or a ``Damaged`` saying what is wrong with it. Knows
nothing about any dataset's fields.

CSV text is decoded as UTF-8 (with or without BOM); a file that is not UTF-8 is decoded as GBK (GB18030,
its superset) when that works, and a UTF-8 file with a few damaged bytes keeps its good rows. The chosen
decoding comes back as a ``Decoded`` note the importer prints. Example:
``read_csv(path, "labels.csv").rows`` -> ``[("labels.csv:2", {"file": "NORMAL/a.jpeg", ...}), ...]``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..common.errors import P2MedError
from ..export.tables import BadRow, read_rows

REPLACEMENT = "\ufffd"


class InputError(P2MedError, ValueError):
    """An input file cannot be read at all; the message names the file and why."""


@dataclass(frozen=True)
class Damaged:
    """An input object that cannot be parsed: ``code`` for the ledger reason, ``text`` for people."""

    code: str
    text: str


@dataclass(frozen=True)
class Decoded:
    """How a text file was decoded: ``encoding`` and, when it was not plain UTF-8, a sentence saying so."""

    encoding: str
    note: str | None = None


def decode_text(data: bytes, name: str) -> tuple[str, Decoded]:
    """UTF-8 (BOM stripped); else damaged UTF-8 (a few bad bytes among many good characters); else GBK.

    GBK is decoded with GB18030, which contains it. Raises ``InputError`` naming the file and the first bad
    byte of each attempt when neither decoding fits.
    """
    try:
        return data.decode("utf-8-sig"), Decoded("utf-8")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    lenient = data.decode("utf-8-sig", errors="replace")
    bad = lenient.count(REPLACEMENT)
    good = sum(1 for ch in lenient if ord(ch) > 127 and ch != REPLACEMENT)
    if good >= 20 * bad:
        return lenient, Decoded("utf-8", f"{name}: {bad} invalid UTF-8 byte sequence(s) (first at byte "
                                         f"{utf8_error.start}); the rows holding them are quarantined")
    try:
        return data.decode("gb18030"), Decoded("gbk", f"{name}: not UTF-8 (invalid byte at {utf8_error.start}); "
                                                      f"decoded as GBK/GB18030")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: cannot decode: not UTF-8 (invalid byte at {utf8_error.start}) and not "
                         f"GBK/GB18030 (invalid byte at {exc.start}); save the file as UTF-8") from exc


@dataclass
class CsvTable:
    """A CSV file's header, its records keyed by ledger source, and how it was decoded."""

    header: list[str]
    rows: list[tuple[str, dict[str, str] | Damaged]]
    decoded: Decoded

    def require(self, name: str, needed: tuple[str, ...]) -> None:
        """Raise ``InputError`` naming the file and the columns its header lacks."""
        missing = [c for c in needed if c not in self.header]
        if missing:
            raise InputError(f"{name}: missing column(s) {missing}; expected at least {list(needed)}, "
                             f"found {self.header}")


def read_csv(path: Path, name: str) -> CsvTable:
    """All records of a CSV file with a header row, keyed by the line each record starts on.

    Cells are stripped strings (missing trailing cells are ""); a record with more cells than the header,
    or with undecodable bytes, comes back as ``Damaged``. Blank lines are not records.
    """
    text, decoded = decode_text(path.read_bytes(), name)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return CsvTable([], [], decoded)
    except csv.Error as exc:
        raise InputError(f"{name}:1: cannot parse the header row ({exc})") from exc
    rows: list[tuple[str, dict[str, str] | Damaged]] = []
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rows.append((f"{name}:{start}", Damaged("bad-csv", f"cannot parse the record ({exc})")))
            start = reader.line_num + 1
            continue
        where = f"{name}:{start}"
        start = reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            rows.append((where, Damaged("bad-csv", f"{len(cells)} cells for {len(header)} header columns")))
        elif any(REPLACEMENT in c for c in cells):
            rows.append((where, Damaged("bad-encoding", "holds bytes that are not valid UTF-8")))
        else:
            rows.append((where, {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header)}))
    return CsvTable(header, rows, decoded)


def read_jsonl(path: Path, name: str) -> Iterator[tuple[str, dict[str, Any] | Damaged]]:
    """Each non-blank line as a JSON object; a truncated or non-JSON line comes back as ``Damaged``."""
    for line, row in read_rows(path):
        if isinstance(row, BadRow):
            yield f"{name}:{line}", Damaged("bad-json", row.error)
        else:
            yield f"{name}:{line}", row


def read_json_array(path: Path, name: str) -> tuple[list[tuple[str, Any | Damaged]], Decoded]:
    """Elements of a top-level JSON array (or one top-level object as ``name[0]``), salvaging a truncated file,
    and how the file was decoded.

    When the file ends inside element k (or has garbage there), elements 0..k-1 come back and the rest as one
    ``Damaged`` item with source ``name[k:]``.
    """
    text, decoded = decode_text(path.read_bytes(), name)
    return list(_array_items(text, name)), decoded


def _array_items(text: str, name: str) -> Iterator[tuple[str, Any | Damaged]]:
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos < len(text) and text[pos] == "{":
        try:
            obj, _ = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield f"{name}[0:]", Damaged("bad-json", f"not valid JSON ({exc.msg} at byte {exc.pos})")
            return
        yield f"{name}[0]", obj
        return
    if pos >= len(text) or text[pos] != "[":
        yield f"{name}[0:]", Damaged("bad-json", "expected a JSON array of objects or one object")
        return
    pos = _skip_ws(text, pos + 1)
    index = 0
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield f"{name}[{index}:]", Damaged(
                "truncated", f"the JSON array breaks inside element {index} ({exc.msg} at byte {exc.pos}); "
                             f"the {index} element(s) before it were read, the rest is lost")
            return
        yield f"{name}[{index}]", obj
        index += 1
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            return
        yield f"{name}[{index}:]", Damaged(
            "truncated", f"the JSON array ends without ']' after element {index - 1} (byte {pos}); "
                         f"the {index} element(s) before it were read")
        return


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos
