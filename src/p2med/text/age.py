"""How a chart writes a child's age, in Chinese or English: 生后12天 / 12 days, 5月龄 / 5 months, 3岁2月 / 3 years 2 months."""

from __future__ import annotations

import datetime as dt


def age_days(birth: str | dt.date | None, on: str | dt.date | dt.datetime | None) -> int | None:
    """Days between a birth date and an exam/visit time (ISO strings accepted); None when either is unknown."""
    if not birth or not on:
        return None
    b = dt.date.fromisoformat(birth[:10]) if isinstance(birth, str) else birth
    o = on if isinstance(on, dt.date) and not isinstance(on, dt.datetime) else None
    if o is None:
        o = dt.date.fromisoformat(on[:10]) if isinstance(on, str) else on.date()
    return (o - b).days


def age_text(days: int, lang: str = "zh") -> str:
    if days < 28:
        d = max(days, 1)
        return f"生后{d}天" if lang == "zh" else f"{d} day{'s' if d > 1 else ''}"
    months = days * 12 // 365
    if months < 12:
        m = max(months, 1)
        return f"{m}月龄" if lang == "zh" else f"{m} month{'s' if m > 1 else ''}"
    years, rem = divmod(months, 12)
    if lang == "zh":
        return f"{years}岁{rem}月" if rem and years < 6 else f"{years}岁"
    y = f"{years} year{'s' if years > 1 else ''}"
    return f"{y} {rem} month{'s' if rem > 1 else ''}" if rem and years < 6 else y
