"""Scrub one patient's free text: the patient's own known identifiers, identifier patterns, names shown by
context, and dates (shifted, not removed).

``KnownIdentifiers`` collects what the export (patients table, ids) and the patient's DICOM headers say about
the patient; ``Scrubber(known, shift_days).scrub(text, lang, ref)`` returns the scrubbed text and counts by
kind (never the values). Replacements: names -> surname + 某 (任嘉子 -> 任某); ids -> their pseudonyms;
numbers, addresses, e-mail -> a bracketed token in the record's language; dates -> shifted in their own format.
What it does not know: names that neither the export nor a context cue reveals.
Example: ``scrub("患儿任嘉子，门诊号：2688467545。", "zh")`` -> ``"患儿任某，门诊号：[编号]。"``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from . import patterns as P
from .dates import find_dates

TOKENS = {
    "zh": {"id_number": "[身份证号]", "phone": "[电话]", "record_no": "[编号]", "email": "[邮箱]", "address": "[地址]",
           "name": "[姓名]", "bed": "[床号]", "other": "[已删除]"},
    "en": {"id_number": "[ID]", "phone": "[PHONE]", "record_no": "[NUMBER]", "email": "[EMAIL]", "address": "[ADDRESS]",
           "name": "[NAME]", "bed": "[BED]", "other": "[REMOVED]"},
}
ADMIN_SPLIT = re.compile(r"(?<=[省市区县镇乡号])")


def has_cjk(text: str) -> bool:
    return any(P.is_han(c) for c in text)


@dataclass
class KnownIdentifiers:
    """One patient's identifiers as the export and its DICOM files know them."""

    names: set[str] = field(default_factory=set)          # Chinese full names (patient, guardians, ...)
    latin_names: set[str] = field(default_factory=set)    # pinyin / Latin names, any of "REN^JIAZI", "Ren Jiazi"
    numbers: dict[str, str] = field(default_factory=dict) # number -> kind (id_number, phone, record_no)
    addresses: set[str] = field(default_factory=set)
    others: set[str] = field(default_factory=set)         # institution names and other identifying strings
    ids: dict[str, str] = field(default_factory=dict)     # raw patient/visit/exam/record id -> its pseudonym

    def add_person(self, value: str) -> None:
        """A name in any form: 任嘉子, a DICOM PN (``REN^JIAZI=任^嘉子``) or a Latin name."""
        for group in str(value).split("="):
            parts = [p.strip() for p in re.split(r"[\^]", group) if p.strip()]
            if not parts:
                continue
            joined = "".join(parts)
            if has_cjk(joined):
                if len(joined) >= 2:
                    self.names.add(joined)
            elif len(joined.replace(" ", "")) >= 4:
                self.latin_names.add(" ".join(parts))

    def add_number(self, value: str, kind: str) -> None:
        value = re.sub(r"[\s\-()]", "", str(value))
        if len(value) >= 5:
            self.numbers[value] = kind

    def add_address(self, value: str) -> None:
        value = str(value).strip()
        if len(value) < 4:
            return
        self.addresses.add(value)
        pieces = ADMIN_SPLIT.split(value)
        for i in range(1, len(pieces)):     # the same address without its leading province / city / road
            tail = "".join(pieces[i:])
            if len(tail) >= 6:
                self.addresses.add(tail)

    def add_other(self, value: str) -> None:
        value = str(value).strip()
        if len(value) >= (2 if has_cjk(value) else 4):
            self.others.add(value)

    def merge(self, other: "KnownIdentifiers") -> None:
        self.names |= other.names
        self.latin_names |= other.latin_names
        self.numbers.update(other.numbers)
        self.addresses |= other.addresses
        self.others |= other.others
        self.ids.update(other.ids)


def _alternation(values, flexible_digits: bool = False) -> str | None:
    items = sorted({v for v in values if v}, key=len, reverse=True)
    if not items:
        return None
    if flexible_digits:   # a known number matches with or without hyphens inside
        return "|".join("-?".join(re.escape(c) for c in v) for v in items)
    return "|".join(re.escape(v) for v in items)


def _latin_pattern(names) -> re.Pattern | None:
    alts = []
    for name in names:
        tokens = [t for t in re.split(r"[\s,^]+", name) if t]
        for order in {tuple(tokens), tuple(reversed(tokens))}:
            alts.append(r"[\s,^]*".join(re.escape(t) for t in order))
    if not alts:
        return None
    return re.compile(r"(?<![A-Za-z])(?:" + "|".join(sorted(alts, key=len, reverse=True)) + r")(?![A-Za-z])", re.I)


class Scrubber:
    """Scrubs texts of one patient. Build once per patient; ``scrub`` is pure."""

    def __init__(self, known: KnownIdentifiers, shift_days: int) -> None:
        self.known = known
        self.shift_days = shift_days
        ids = _alternation(k for k in known.ids if len(k) >= 4)
        self._ids = re.compile(P.NB + f"(?:{ids})" + P.NA) if ids else None
        nums = _alternation(known.numbers, flexible_digits=True)
        self._numbers = re.compile(P.NB + f"(?:{nums})" + P.NA, re.I) if nums else None
        self._number_kind = {re.sub(r"-", "", k).upper(): v for k, v in known.numbers.items()}
        addr = _alternation(known.addresses)
        self._addresses = re.compile(addr) if addr else None
        names = _alternation(known.names)
        self._names = re.compile(names) if names else None
        given = _alternation(g for n in known.names if len(g := n[len(P.surname_of(n)):]) >= 2)
        self._given = re.compile(given) if given else None
        self._latin = _latin_pattern(known.latin_names)
        others = _alternation(known.others)
        self._others = re.compile(others, re.I) if others else None
        # (pattern, group, match -> (replacement, kind) or None), in priority order: a span already taken by
        # an earlier rule is not taken again; names by context and dates come after all of these
        rules: list[tuple[re.Pattern | None, int, Callable]] = [
            (self._ids, 0, lambda m, tok: (known.ids[m.group()], "id")),
            (P.ID_NUMBER, 0, _token("id_number")),            # check character right or not
            (P.ID_LABELLED, 1, _token("id_number")),
            (self._numbers, 0, self._number),
            (P.MOBILE, 0, _token("phone")),
            (P.LANDLINE, 0, _token("phone")),
            (P.PHONE_LABELLED, 1, lambda m, tok: (tok["phone"], "phone")
             if sum(c.isdigit() for c in m.group(1)) >= 7 else None),
            (P.EMAIL, 0, _token("email")),
            (P.RECORD_LABELLED, 2, _token("record_no")),
            (P.BED, 0, _token("bed")),
            (self._addresses, 0, _token("address")),
            (P.ADDRESS_LABELLED, 1, _token("address")),
            (P.ADDRESS, 0, _token("address")),
            (self._names, 0, lambda m, tok: (P.surname_of(m.group()) + "某", "name")),
            (self._given, 0, lambda m, tok: ("某", "name")),
            (self._latin, 0, _token("name")),
            (P.EN_NAME, 2, lambda m, tok: (tok["name"], "context_name")),
            (self._others, 0, _token("other")),
        ]
        self._rules = [r for r in rules if r[0] is not None]

    def _number(self, m: re.Match, tok: dict) -> tuple[str, str]:
        kind = self._number_kind.get(m.group().replace("-", "").upper(), "record_no")
        return tok[kind], kind

    def scrub(self, text: str | None, lang: str = "zh", ref: dt.date | None = None) -> tuple[str | None, Counter]:
        """(scrubbed text, counts by kind). ``ref`` is the text's own date (for dates written without a year)."""
        counts: Counter = Counter()
        if not text:
            return text, counts
        tok = TOKENS["zh" if lang == "zh" else "en"]
        norm, index = P.normalise(text)
        spans: list[tuple[int, int, str, str]] = []

        def add(s: int, e: int, rep: str, kind: str) -> None:
            if e > s and not any(s < e2 and s2 < e for s2, e2, _, _ in spans):
                spans.append((s, e, rep, kind))

        for pattern, group, replace in self._rules:
            for m in pattern.finditer(norm):
                found = replace(m, tok)
                if found is not None:
                    add(m.start(group), m.end(group), *found)
        for s, e in context_names(norm):
            add(s, e, P.surname_of(norm[s:e]) + "某", "context_name")
        for d in find_dates(norm, self.shift_days, ref):
            add(d.start, d.end, d.replacement, "date")

        out, last = [], 0
        for s, e, rep, kind in sorted(spans):
            start, end = index[s], index[e - 1] + 1
            out.append(text[last:start])
            out.append(rep)
            last = end
            counts[kind] += 1
        out.append(text[last:])
        return "".join(out), counts


def _token(kind: str) -> Callable:
    return lambda m, tok: (tok[kind], kind)


def _given_ok(word: str) -> bool:
    return all(P.is_han(c) and c not in P.STOP for c in word)


def _name_after(text: str, p: int) -> str | None:
    """A name that starts at ``p`` right after a cue (患儿X, 母亲X): surname + 1-2 characters, then a boundary."""
    surnames = [s for s in P.COMPOUND_SURNAMES if text.startswith(s, p)]
    if not surnames and p < len(text) and text[p] in P.SURNAMES and text[p] not in P.WORDY_SURNAMES:
        surnames = [text[p]]
    for sur in surnames:
        for g in (1, 2):
            j = p + len(sur) + g
            word = text[p:j]
            if j > len(text) or not _given_ok(text[p + len(sur):j]) or word in P.NOT_NAMES:
                continue
            if j == len(text) or text[j] in P.AFTER_NAME:
                return word
    return None


def _name_before(text: str, q: int) -> str | None:
    """A name that ends at ``q`` right before a title (X医生, X主治医师): the longest plausible one."""
    for length in (4, 3, 2):
        s = q - length
        if s < 0:
            continue
        word = text[s:q]
        compound = any(word.startswith(c) for c in P.COMPOUND_SURNAMES)
        if length == 4 and not compound:
            continue
        sur = P.surname_of(word) if compound else word[0]
        if (sur in P.COMPOUND_SURNAMES or sur in P.SURNAMES) and _given_ok(word[len(sur):]) \
                and word not in P.NOT_NAMES:
            return word
    return None


def context_names(text: str) -> list[tuple[int, int]]:
    """Spans of Chinese names the context shows: after 患儿/母亲/医生-style cues, before 医生/主任医师 titles."""
    spans = []
    for m in P.PREFIX_CUE.finditer(text):
        end = m.start() + len(m.group(1))
        name = _name_after(text, end)
        if name:
            spans.append((end, end + len(name)))
    for m in P.SUFFIX_CUE.finditer(text):
        name = _name_before(text, m.start())
        if name:
            spans.append((m.start() - len(name), m.start()))
    return spans
