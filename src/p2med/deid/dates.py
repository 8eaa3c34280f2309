"""Date shifting: one shift in whole days per patient, applied to DICOM DA/DT values, export times and dates
written in text (Chinese and ISO formats, Chinese numerals, English month names).

A whole-day shift keeps every interval and every age exactly and leaves times of day (TM) as they are. A text
date keeps its format: ``2024年3月5日`` -> ``2025年5月14日``, ``2024-03-05`` -> ``2025-05-14``, ``3月5日`` (no
year: the year comes from the record's own date) -> ``5月14日``. What it does not know: whose date it is (the
caller passes the shift). Example: ``shift_da("20240305", 435)`` -> ``"20250514"``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

CN_DIGITS = {"〇": 0, "零": 0, "○": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
CN_DIGIT_OF = "〇一二三四五六七八九"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
MONTH_OF = {m.lower(): i for i, m in enumerate(MONTHS, 1)} | {m[:3].lower(): i for i, m in enumerate(MONTHS, 1)}
MONTH_OF["sept"] = 9
YEARS = (1900, 2100)   # a four-digit number outside these years is not a date


def _valid(y: int, m: int, d: int) -> dt.date | None:
    if not YEARS[0] <= y <= YEARS[1]:
        return None
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def shift_date(d: dt.date, days: int) -> dt.date:
    return d + dt.timedelta(days=days)


def shift_da(value: str, days: int) -> str | None:
    """A DICOM DA (``YYYYMMDD``, or a range ``A-B``) shifted; None when it is not a date."""
    value = value.strip()
    if "-" in value:
        parts = [shift_da(p, days) if p else "" for p in value.split("-", 1)]
        return None if None in parts else "-".join(parts)  # type: ignore[arg-type]
    if len(value) != 8 or not value.isdigit():
        return None
    d = _valid(int(value[:4]), int(value[4:6]), int(value[6:]))
    return None if d is None else f"{shift_date(d, days):%Y%m%d}"


def shift_dt(value: str, days: int) -> str | None:
    """A DICOM DT (``YYYY[MM[DD[HH...]]]`` + optional offset) shifted; partial dates keep their precision."""
    value = value.strip()
    m = re.fullmatch(r"(\d{4})(\d{2})?(\d{2})?([\d.]*)([+-]\d{4})?", value)
    if not m:
        return None
    y, mo, d, rest, tz = m.groups()
    # a year alone is shifted from its middle, a year-month from its 15th, then printed at the same precision
    base = _valid(int(y), int(mo) if mo else 7, int(d) if d else (15 if mo else 1))
    if base is None:
        return None
    s = shift_date(base, days)
    head = f"{s:%Y}" + (f"{s:%m}" if mo else "") + (f"{s:%d}" if d else "")
    return head + (rest or "") + (tz or "")


def shift_iso(value: str, days: int) -> str | None:
    """An export date or time (``2024-03-05`` or ``2024-03-05T09:30:00``) shifted; None when unparseable."""
    try:
        if len(value) == 10:
            return shift_date(dt.date.fromisoformat(value), days).isoformat()
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return (t + dt.timedelta(days=days)).isoformat(timespec="seconds" if t.microsecond == 0 else "auto")


def _cn_number(text: str) -> int:
    """一 .. 三十一 (month/day) or digit by digit (year: 二〇二四)."""
    if "十" not in text:
        n = 0
        for ch in text:
            n = n * 10 + CN_DIGITS[ch]
        return n
    tens, _, ones = text.partition("十")
    return (CN_DIGITS[tens] if tens else 1) * 10 + (CN_DIGITS[ones] if ones else 0)


def _cn_write(n: int, year: bool = False) -> str:
    if year:
        return "".join(CN_DIGIT_OF[int(c)] for c in str(n))
    if n < 10:
        return CN_DIGIT_OF[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else CN_DIGIT_OF[tens]) + "十" + (CN_DIGIT_OF[ones] if ones else "")


def _two(n: int, padded: bool) -> str:
    return f"{n:02d}" if padded else str(n)


def _padded(*parts: str, iso: bool = False) -> bool:
    """Whether the source writes months and days with two digits: a leading zero says so (2024年03月05日);
    ISO-style dashes pad unless every part has one digit; otherwise a date without zeros is not padded."""
    if any(p.startswith("0") for p in parts):
        return True
    return iso and any(len(p) == 2 for p in parts)


CN = "[〇零○一二三四五六七八九]"
CN_SMALL = "[一二三四五六七八九十]{1,3}"
EN_MONTH = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|" \
           r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"


def _month_day(month: str, day: str, s: dt.date, sep: str, iso: bool = False) -> str:
    """The shifted month and day, joined by ``sep``, padded as the source ``month`` and ``day`` were."""
    padded = _padded(month, day, iso=iso)
    return f"{_two(s.month, padded)}{sep}{_two(s.day, padded)}"


def _month_name(src: str, m: int) -> str:
    name = MONTHS[m - 1]
    core = src.rstrip(".")
    out = name if len(core) > 3 else name[:3]
    if core.isupper():
        out = out.upper()
    return out + ("." if src.endswith(".") else "")


def _month_of(name: str) -> int:
    return MONTH_OF[name.rstrip(".").lower()]


def _year_for(month: int, day: int, ref: dt.date | None) -> dt.date | None:
    """A month-day without a year: the year that puts it nearest to the text's own date."""
    if ref is None:
        return None
    best = None
    for y in (ref.year - 1, ref.year, ref.year + 1):
        d = _valid(y, month, day)
        if d is not None and (best is None or abs((d - ref).days) < abs((best - ref).days)):
            best = d
    return best


# (pattern, read: (groups, the text's own date) -> date or None, write: (groups, shifted date) -> text).
# Earlier formats win where matches overlap.
FORMATS = [
    (re.compile(r"(?<!\d)(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*([日号])"),           # 2024年3月5日
     lambda g, ref: _valid(int(g[0]), int(g[1]), int(g[2])),
     lambda g, s: f"{s.year}年{_month_day(g[1], g[2], s, '月')}{g[3]}"),
    (re.compile(rf"({CN}{{4}})年({CN_SMALL})月({CN_SMALL})([日号])"),                            # 二〇二四年三月五日
     lambda g, ref: _valid(_cn_number(g[0]), _cn_number(g[1]), _cn_number(g[2])),
     lambda g, s: f"{_cn_write(s.year, True)}年{_cn_write(s.month)}月{_cn_write(s.day)}{g[3]}"),
    (re.compile(r"(?<![\d.])(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?![\d])"),                       # 2024-03-05
     lambda g, ref: _valid(int(g[0]), int(g[2]), int(g[3])),
     lambda g, s: f"{s.year}{g[1]}{_month_day(g[2], g[3], s, g[1], iso=g[1] == '-')}"),
    (re.compile(r"(?<![\dA-Za-z.])(\d{4})(\d{2})(\d{2})(?![\dA-Za-z])"),                         # 20240305
     lambda g, ref: _valid(int(g[0]), int(g[1]), int(g[2])),
     lambda g, s: f"{s:%Y%m%d}"),
    (re.compile(rf"(?<![A-Za-z])({EN_MONTH})\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})(?!\d)", re.I),  # March 5, 2024
     lambda g, ref: _valid(int(g[2]), _month_of(g[0]), int(g[1])),
     lambda g, s: f"{_month_name(g[0], s.month)} {s.day}, {s.year}"),
    (re.compile(rf"(?<![\dA-Za-z])(\d{{1,2}})(?:st|nd|rd|th)?\s+({EN_MONTH}),?\s+(\d{{4}})(?!\d)", re.I),  # 5 Mar 2024
     lambda g, ref: _valid(int(g[2]), _month_of(g[1]), int(g[0])),
     lambda g, s: f"{s.day} {_month_name(g[1], s.month)} {s.year}"),
    (re.compile(r"(?<!\d)(\d{4})\s*年\s*(\d{1,2})\s*月(?!\s*\d{1,2}\s*[日号])"),             # 2024年3月
     lambda g, ref: _valid(int(g[0]), int(g[1]), 15),
     lambda g, s: f"{s.year}年{_two(s.month, _padded(g[1]))}月"),
    (re.compile(r"(?<![\d年])(\d{1,2})\s*月\s*(\d{1,2})\s*([日号])"),                            # 3月5日
     lambda g, ref: _year_for(int(g[0]), int(g[1]), ref),
     lambda g, s: f"{_month_day(g[0], g[1], s, '月')}{g[2]}"),
]


@dataclass(frozen=True)
class DateSpan:
    start: int
    end: int
    replacement: str


def find_dates(text: str, days: int, ref: dt.date | None = None) -> list[DateSpan]:
    """Every date in ``text`` with its shifted rendering, in the text's own format."""
    spans: list[DateSpan] = []
    for pattern, read, write in FORMATS:
        for m in pattern.finditer(text):
            if any(m.start() < s.end and s.start < m.end() for s in spans):
                continue
            d = read(m.groups(), ref)
            if d is not None:
                spans.append(DateSpan(m.start(), m.end(), write(m.groups(), shift_date(d, days))))
    return sorted(spans, key=lambda s: s.start)
