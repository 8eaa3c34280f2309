"""The DICOM profile: PS3.15 Table E.1-1 Basic Profile (``basic_profile.tsv``) with the options Retain
Longitudinal Temporal Information with Modified Dates and Clean Descriptors, private tags removed, UIDs
remapped consistently.

The table is data: one row per attribute with the standard's action and the option that overrides it. This
module only turns a row into what happens to an element: ``remove`` (X, X/Z, X/D, X/Z/D), ``empty`` (Z),
``dummy`` (D, Z/D), ``uid`` (U), ``references`` (X/Z/U*: kept, UIDs inside remapped, so references between
files and series stay valid), ``shift`` (dates option), ``clean`` (descriptors option), ``keep`` (not in the
table; free text is still scrubbed of the patient's known identifiers). Patient's Name and Patient ID become
the patient's pseudonym. What it does not know: pixels (``burned_in``) or files (``dicom``).
Example: ``apply_profile(ds, load_profile(), ctx)`` then ``mark_deidentified(ds)``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from .dates import shift_da, shift_dt

TABLE = Path(__file__).with_name("basic_profile.tsv")
BASIC = {"X": "remove", "X/Z": "remove", "X/D": "remove", "X/Z/D": "remove", "Z": "empty", "Z/D": "dummy",
         "D": "dummy", "U": "uid", "X/Z/U*": "references"}
OPTION = {"dates": "shift", "descriptors": "clean"}
TEXT_VRS = ("LO", "SH", "ST", "LT", "UT", "UC")
STRING_VRS = TEXT_VRS + ("PN", "CS", "AE", "UR")
NUMBER_VRS = ("IS", "DS", "US", "SS", "UL", "SL", "FL", "FD", "UV", "SV")
# VRs whose values can identify someone as text (numbers, ages, codes and dates are not listed as such)
VALUE_VRS = TEXT_VRS + ("PN", "UI", "AE", "UR")
DUMMY = "ANONYMIZED"
# DeidentificationMethod is LO (64 characters a value), multi-valued
METHOD = ("P2Med deid: PS3.15 Table E.1-1 Basic Profile", "Retain Longitudinal Temporal Info Modified Dates",
          "Clean Descriptors", "private tags removed, UIDs remapped by key")
# (code value, meaning) of DeidentificationMethodCodeSequence, scheme DCM (PS3.16 CID 7050)
METHOD_CODES = (("113100", "Basic Application Confidentiality Profile"),
                ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
                ("113105", "Clean Descriptors Option"))
PSEUDONYM_KEYWORDS = ("PatientName", "PatientID")


@dataclass(frozen=True)
class Rule:
    tag: str        # "(0010,0010)", or "(60xx,3000)" for a repeating group
    keyword: str
    vr: str
    basic: str      # the standard's code: X, Z, D, U, X/Z, ...
    option: str     # dates | descriptors | ""
    name: str

    @property
    def action(self) -> str:
        return OPTION[self.option] if self.option else BASIC[self.basic]


@dataclass
class Profile:
    rules: dict[int, Rule]
    ranges: list[tuple[int, int, int, int, Rule]]   # (group lo, group hi, element lo, element hi, rule)

    def rule(self, tag: int) -> Rule | None:
        found = self.rules.get(tag)
        if found is not None:
            return found
        group, elem = tag >> 16, tag & 0xFFFF
        for glo, ghi, elo, ehi, rule in self.ranges:
            if glo <= group <= ghi and elo <= elem <= ehi:
                return rule
        return None

    def action(self, tag: int) -> str:
        rule = self.rule(tag)
        return rule.action if rule else "keep"


@functools.lru_cache(maxsize=1)
def load_profile(path: str | None = None) -> Profile:
    rules: dict[int, Rule] = {}
    ranges = []
    for line in Path(path or TABLE).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        tag, keyword, vr, basic, option, name = line.split("\t")
        rule = Rule(tag, keyword if keyword != "-" else "", vr if vr != "-" else "", basic,
                    option if option != "-" else "", name)
        group, elem = tag.strip("()").split(",")
        if "x" in group:
            glo, ghi = int(group.replace("xx", "00"), 16), int(group.replace("xx", "FF"), 16)
            elo, ehi = (0, 0xFFFF) if "x" in elem else (int(elem, 16), int(elem, 16))
            ranges.append((glo, ghi, elo, ehi, rule))
        else:
            rules[(int(group, 16) << 16) | int(elem, 16)] = rule
    return Profile(rules, ranges)


@dataclass
class DicomContext:
    """What the profile needs from the caller for one file: the patient's pseudonym, shift, UID map, scrubber."""

    patient_pseudonym: str
    shift_days: int
    uid: Callable[[str], str]
    scrub: Callable[[str], str]
    dropped_dates: int = 0          # date values that could not be parsed and were removed
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, action: str) -> None:
        self.counts[action] = self.counts.get(action, 0) + 1


def _values(value) -> list:
    return list(value) if isinstance(value, (list, MultiValue)) else [value]


def _set(elem, values: list) -> None:
    elem.value = values if len(values) != 1 else values[0]


def apply_profile(ds: Dataset, profile: Profile, ctx: DicomContext) -> None:
    """Apply the profile to ``ds`` in place, recursing into sequence items."""
    for tag in list(ds.keys()):
        elem = ds[tag]
        if tag.is_private or tag.element == 0:
            del ds[tag]
            continue
        rule = profile.rule(int(tag))
        action = rule.action if rule else "keep"
        if elem.keyword in PSEUDONYM_KEYWORDS:
            elem.value = ctx.patient_pseudonym
            ctx.count("pseudonym")
            continue
        ctx.count(action)
        if elem.VR == "SQ":
            if action == "remove":
                del ds[tag]
            elif action in ("empty", "dummy"):
                elem.value = Sequence()
            else:                                   # keep, references, clean: the table applies inside too
                for item in elem.value:
                    apply_profile(item, profile, ctx)
        elif action == "remove":
            del ds[tag]
        elif action == "empty":
            elem.value = b"" if elem.VR in ("OB", "OW", "UN") else ("" if elem.VR not in NUMBER_VRS else None)
        elif action == "dummy":
            _dummy(elem, ctx)
        elif action in ("uid", "references"):
            if elem.VR == "UI" and elem.value:
                _set(elem, [ctx.uid(str(v)) for v in _values(elem.value) if str(v).strip()])
        elif action == "shift":
            if not _shift(elem, ctx):
                del ds[tag]
                ctx.dropped_dates += 1
        elif action == "clean" or (action == "keep" and elem.VR in TEXT_VRS):
            if elem.value not in (None, ""):
                _set(elem, [ctx.scrub(str(v)) for v in _values(elem.value)])
        elif action == "keep" and elem.VR == "PN":
            elem.value = ""                          # a person's name the table does not list: never kept


def _dummy(elem, ctx: DicomContext) -> None:
    vr = elem.VR
    if vr == "UI":
        if elem.value:
            _set(elem, [ctx.uid(str(v)) for v in _values(elem.value)])
    elif vr in ("DA", "DT", "TM"):
        if not _shift(elem, ctx):
            elem.value = ""
    elif vr in STRING_VRS:
        elem.value = DUMMY
    elif vr in ("IS", "DS"):
        elem.value = "0"
    elif vr in NUMBER_VRS:
        elem.value = 0
    elif vr == "AS":
        elem.value = ""          # an age has no neutral dummy
    else:
        elem.value = b""


def _shift(elem, ctx: DicomContext) -> bool:
    """Shift a DA / DT value by the patient's days (TM stays: a whole-day shift keeps the time of day)."""
    if elem.value in (None, "") or elem.VR == "TM":
        return True
    fn = shift_da if elem.VR == "DA" else shift_dt if elem.VR == "DT" else None
    if fn is None:
        return False
    out = [fn(str(v), ctx.shift_days) for v in _values(elem.value)]
    if any(v is None for v in out):
        return False
    _set(elem, out)
    return True


def mark_deidentified(ds: Dataset) -> None:
    """PatientIdentityRemoved, DeidentificationMethod (+ code sequence), LongitudinalTemporalInformationModified."""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = list(METHOD)
    items = []
    for value, meaning in METHOD_CODES:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = "MODIFIED"


def identifying_values(ds: Dataset, profile: Profile) -> Iterator[tuple[str, str]]:
    """(kind, value) of every value the profile removes or replaces (and every private value), recursively.

    Kinds: person, uid, address, phone, number, private, other. Only text-like values are listed (not dates,
    which are shifted, nor numbers, ages or codes, which would match ordinary text). Used to scrub descriptors
    and texts and by the verifier.
    """
    for elem in ds:
        rule = profile.rule(int(elem.tag))
        action = rule.action if rule else "keep"
        if elem.VR == "SQ":
            for item in elem.value or ():
                yield from identifying_values(item, profile)
            continue
        private = elem.tag.is_private and elem.tag.element >= 0x1000   # values, not private creators
        replaced = action in ("remove", "empty", "dummy", "uid") or elem.keyword in PSEUDONYM_KEYWORDS
        if elem.VR not in VALUE_VRS + (("UN", "OB") if private else ()) or not (private or replaced):
            continue
        for v in _values(elem.value):
            text = _as_text(v)
            if not text:
                continue
            yield _kind(elem, private), text


def _as_text(v) -> str:
    """A value as text; bytes (a private element read as UN) only when they decode to printable text."""
    if isinstance(v, bytes):
        v = v.decode("utf-8", errors="replace").strip("\x00 ")
        if not v.isprintable():
            return ""
    return str(v).strip("\x00 ").strip() if v is not None else ""


def _kind(elem, private: bool) -> str:
    if private:
        return "private"
    kw = elem.keyword or ""
    if elem.VR == "PN":
        return "person"
    if elem.VR == "UI":
        return "uid"
    if "Address" in kw:
        return "address"
    if "Telephone" in kw or "Telecom" in kw:
        return "phone"
    if kw.endswith(("ID", "IDs", "Number", "Numbers")) or kw == "AccessionNumber":
        return "number"
    return "other"
