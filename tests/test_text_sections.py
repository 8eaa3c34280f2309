"""Sections written by curation parse back; tolerant parsing of model answers; missing sections reported."""

from p2med.text.sections import format_sections, parse_sections

KEYS = ["findings", "impression"]


def test_round_trip_both_languages():
    sections = {"findings": "双肺纹理清晰。", "impression": "心肺未见异常。"}
    for lang in ("zh", "en"):
        assert parse_sections(format_sections(sections, KEYS, lang), KEYS).sections == sections


def test_tolerant_headers_and_missing():
    p = parse_sections("影像所见：右肺下野斑片影\n诊断意见: 肺炎", KEYS)
    assert p.sections == {"findings": "右肺下野斑片影", "impression": "肺炎"} and not p.missing
    p = parse_sections("【影像所见】右肺下野斑片影。【其他】无", KEYS)
    assert p.missing == ["impression"] and p.unexpected == ["其他"]
    assert parse_sections("[IMPRESSION] normal", KEYS).sections == {"impression": "normal"}
    assert parse_sections("no headers at all", KEYS).missing == KEYS


def test_empty_section_counts_as_missing():
    assert parse_sections("【影像所见】\n【影像诊断】肺炎", KEYS).missing == ["findings"]
