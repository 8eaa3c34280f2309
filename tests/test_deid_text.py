"""Text de-identification: 身份证 with checksum, phones in every spelling, labelled numbers, addresses, known and
context-shown names, dates in every format shifted by exactly the patient's shift; and, on 200 planned
synthetic patients, every identifier the synthetic hospital planted in a record is gone."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2med.deid import patterns as P
from p2med.deid.dates import find_dates, shift_da, shift_dt, shift_iso
from p2med.deid.export import known_from_row
from p2med.deid.text import KnownIdentifiers, Scrubber
from p2med.synth.config import SynthConfig
from p2med.synth.hospital import _Planner
from p2med.synth.phi import id_checksum

SHIFT = 437
FILLER = st.text(alphabet="患儿咳嗽发热天前出现伴有，。无明显诱因", max_size=12)


def scrub(text, known=None, lang="zh", ref=None):
    return Scrubber(known or KnownIdentifiers(), SHIFT).scrub(text, lang, ref)[0]


def fullwidth(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in s)


@st.composite
def id_numbers(draw):
    region = draw(st.sampled_from(["110105", "310104", "440106", "510107"]))
    birth = draw(st.dates(dt.date(1950, 1, 1), dt.date(2025, 12, 31)))
    seq = draw(st.integers(0, 999))
    first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
    return first17 + id_checksum(first17)


@settings(max_examples=60, deadline=None)
@given(id_numbers(), FILLER, FILLER, st.sampled_from(["plain", "fullwidth", "spaced"]))
def test_valid_id_numbers_are_removed_in_any_spelling(number, before, after, style):
    written = {"plain": number, "fullwidth": fullwidth(number),
               "spaced": f"{number[:6]} {number[6:14]} {number[14:]}"}[style]
    out = scrub(before + written + after)
    assert "[身份证号]" in out
    assert re.sub(r"\D", "", number[:17]) not in re.sub(r"\D", "", fullwidth_back(out))


def fullwidth_back(s: str) -> str:
    return "".join(chr(ord(c) - 0xFEE0) if "０" <= c <= "９" else c for c in s)


def test_id_numbers_are_removed_with_a_wrong_check_character_too():
    valid = "110105202103021240"[:17]
    valid += id_checksum(valid)
    wrong = valid[:17] + ("0" if valid[17] != "0" else "1")      # mistyped: still a birth date and a region
    assert P.id_number_valid(valid) and not P.id_number_valid(wrong)
    for number in (valid, wrong):
        assert number not in scrub(f"编号{number}。") and number not in scrub(f"身份热号：{number}。")
    typed = f"{wrong[0]}粗{wrong[1:]}"                            # a character typed into it, label mistyped too
    assert "20210302" not in scrub(f"身份热号：{typed}。") and "20210302" not in scrub(f"身份证号：{typed}。")
    assert scrub("身份证明已核对。") == "身份证明已核对。"
    not_an_id = "110105202113321240"                              # month 13: not shaped like a 身份证
    assert scrub(f"编号{not_an_id}。") == f"编号{not_an_id}。"
    assert not_an_id not in scrub(f"身份证号：{not_an_id}。")       # but a labelled one is removed anyway


@st.composite
def mobiles(draw):
    return draw(st.sampled_from(["138", "159", "186", "199"])) + "".join(
        str(d) for d in draw(st.lists(st.integers(0, 9), min_size=8, max_size=8)))


@settings(max_examples=60, deadline=None)
@given(mobiles(), FILLER, st.sampled_from(["plain", "spaced", "hyphen", "fullwidth", "+86"]))
def test_mobile_numbers_are_removed_in_any_spelling(number, before, style):
    written = {"plain": number, "spaced": f"{number[:3]} {number[3:7]} {number[7:]}",
               "hyphen": f"{number[:3]}-{number[3:7]}-{number[7:]}", "fullwidth": fullwidth(number),
               "+86": f"+86 {number}"}[style]
    out = scrub(f"{before}家长电话{written}。")
    assert "[电话]" in out and number[3:] not in re.sub(r"\D", "", fullwidth_back(out))


def test_landlines_email_beds_and_labelled_record_numbers():
    text = ("座机0571-83456789，邮箱 li.ming@example.com，12床，住院号：ZY20240311，门诊号 2688467545，"
            "病案号:BA76294652，床号：7，就诊卡号：A1234567。")
    out = scrub(text)
    for value in ("83456789", "li.ming@example.com", "ZY20240311", "2688467545", "BA76294652", "A1234567"):
        assert value not in out
    for label in ("住院号：", "门诊号", "病案号:", "床号：", "就诊卡号："):
        assert label in out                                     # the label stays, the value goes
    assert "12床" not in out


@pytest.mark.parametrize("written, shifted_format", [
    ("2024年3月5日", "{y}年{m}月{d}日"), ("2024年03月05日", "{y}年{m:02d}月{d:02d}日"),
    ("2024-03-05", "{y}-{m:02d}-{d:02d}"), ("2024/3/5", "{y}/{m}/{d}"), ("2024.03.05", "{y}.{m:02d}.{d:02d}"),
    ("20240305", "{y}{m:02d}{d:02d}"), ("March 5, 2024", None), ("5 Mar 2024", None), ("二〇二四年三月五日", None),
    ("２０２４年３月５日", "{y}年{m}月{d}日"),
])
def test_dates_are_shifted_by_the_patient_shift_in_their_own_format(written, shifted_format):
    out = scrub(f"患儿{written}曾于外院就诊。")
    new = (dt.date(2024, 3, 5) + dt.timedelta(days=SHIFT))
    assert written not in out
    if shifted_format:
        assert shifted_format.format(y=new.year, m=new.month, d=new.day) in out
    else:
        assert str(new.year) in out or "二〇二五" in out


@pytest.mark.parametrize("written, days, expected", [
    ("2024年4月20日", 988, "2027年1月3日"), ("2024年04月20日", 988, "2027年01月03日"),
    ("2024-04-20", 988, "2027-01-03"), ("2024/4/20", 988, "2027/1/3"), ("2024年12月15日", 20, "2025年1月4日"),
    ("12月15日", 20, "1月4日"),
])
def test_a_date_keeps_its_zero_padding_style_when_shifted(written, days, expected):
    spans = find_dates(f"于{written}就诊", days, ref=dt.date(2024, 12, 20))
    assert [s.replacement for s in spans] == [expected]


def test_month_day_without_year_uses_the_texts_own_date():
    spans = find_dates("3月5日复查", SHIFT, ref=dt.date(2024, 3, 9))
    new = dt.date(2024, 3, 5) + dt.timedelta(days=SHIFT)
    assert [s.replacement for s in spans] == [f"{new.month}月{new.day}日"]


def test_dicom_and_export_date_shifts_agree_with_text_shifts():
    assert shift_da("20240305", SHIFT) == f"{dt.date(2024, 3, 5) + dt.timedelta(days=SHIFT):%Y%m%d}"
    assert shift_dt("20240305093000.5+0800", SHIFT).endswith("093000.5+0800")
    assert shift_iso("2024-03-05T09:30:00", SHIFT) == f"{dt.date(2024, 3, 5) + dt.timedelta(days=SHIFT)}T09:30:00"
    assert shift_da("2024030", SHIFT) is None and shift_iso("yesterday", SHIFT) is None


def test_known_names_become_surname_mou_and_their_latin_forms_go():
    known = KnownIdentifiers()
    for name in ("任嘉子", "司马然", "REN^JIAZI=任^嘉子"):
        known.add_person(name)
    out = scrub("患儿任嘉子由司马然陪同，嘉子今日好转。REN JIAZI; Jiazi Ren.", known)
    assert "任某" in out and "司马某" in out
    for leaked in ("任嘉子", "司马然", "嘉子", "JIAZI", "Jiazi"):
        assert leaked not in out


def test_names_shown_by_context_are_removed_but_clinical_words_stay():
    out = scrub("患儿王小明，男，5岁。由其母亲郑燕代诉病史。今日苏红琳主治医师查房，王强主任医师指示。Dr. Smith agreed.")
    for name in ("王小明", "郑燕", "苏红琳", "王强", "Smith"):
        assert name not in out
    for kept in ("患儿高热3天。", "患儿查体：神清。", "患儿易哭闹，", "患儿于3天前出现咳嗽。", "患儿母亲有哮喘病史。",
                 "管床医生查看患儿。"):
        assert scrub(kept) == kept


def test_addresses_known_labelled_and_written_out():
    known = KnownIdentifiers()
    known.add_address("浙江省杭州市西湖区解放路133号翠湖苑5栋2704室")
    out = scrub("家住西湖区解放路133号翠湖苑5栋2704室。现住址：上海市徐汇区人民路12号。暂住长江路8号3栋201室。", known)
    for part in ("解放路133号", "人民路12号", "长江路8号"):
        assert part not in out


def test_ids_of_the_export_become_their_pseudonyms():
    known = KnownIdentifiers(ids={"13012354": "P0123456789abcdef", "DR24071412354000": "Eaaaaaaaaaaaaaaaa"})
    out = scrub("病人ID 13012354，检查号DR24071412354000。", known)
    assert "P0123456789abcdef" in out and "Eaaaaaaaaaaaaaaaa" in out and "13012354" not in out


@pytest.fixture(scope="module")
def planned():
    planner = _Planner(SynthConfig(patients=200, seed=5, text_phi_rate=0.6))
    return [planner.patient(i) for i in range(200)]


def test_every_identifier_planted_in_records_is_gone(planned):
    """The synthetic hospital's ground truth of text PHI (names, guardians, doctors, phones, 身份证, numbers,
    addresses, dates) against the scrubber, with only what the export's patients table knows."""
    checked = 0
    for plan in planned:
        ident = plan.identity
        row = {"name": ident.patient.name, "guardian_names": f"{ident.mother.name}|{ident.father.name}",
               "id_number": ident.id_number, "phone": "|".join(ident.phones), "address": ident.address,
               "medical_record_numbers": f"{ident.outpatient_no}|{ident.inpatient_no}|{ident.record_no}"}
        scrubber = Scrubber(known_from_row(row), SHIFT)
        records = {r["record_id"]: r for r in plan.records}
        for phi in plan.phi:
            if phi["where"] != "record":
                continue
            rec = records[phi["record_id"]]
            ref = dt.date.fromisoformat(rec["record_time"][:10])
            text = "".join(scrubber.scrub(v, "zh", ref)[0] for k, v in rec.items()
                           if isinstance(v, str) and k not in ("record_id", "patient_id", "visit_id", "record_time"))
            for item in phi["identifiers"]:
                assert item["value"] not in text, (item["kind"], phi["record_id"])
                checked += 1
    assert checked > 200
