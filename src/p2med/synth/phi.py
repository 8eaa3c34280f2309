"""Fake identities for the synthetic hospital: Chinese names (with pinyin), 身份证 numbers with a valid
GB 11643 checksum, phones, addresses, record numbers, institutions. Every value comes from the caller's rng.

These are the planted identifiers de-identification must remove; the ground truth lists each one.
Example: ``Identity(name="王梓涵", pinyin="WANG^ZIHAN", id_number="110105201803124527", ...)``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

SURNAMES = [("王", "WANG"), ("李", "LI"), ("张", "ZHANG"), ("刘", "LIU"), ("陈", "CHEN"), ("杨", "YANG"),
            ("黄", "HUANG"), ("赵", "ZHAO"), ("吴", "WU"), ("周", "ZHOU"), ("徐", "XU"), ("孙", "SUN"),
            ("马", "MA"), ("朱", "ZHU"), ("胡", "HU"), ("郭", "GUO"), ("何", "HE"), ("林", "LIN"),
            ("罗", "LUO"), ("高", "GAO"), ("郑", "ZHENG"), ("梁", "LIANG"), ("谢", "XIE"), ("宋", "SONG"),
            ("唐", "TANG"), ("许", "XU"), ("韩", "HAN"), ("冯", "FENG"), ("邓", "DENG"), ("曹", "CAO"),
            ("彭", "PENG"), ("曾", "ZENG"), ("肖", "XIAO"), ("田", "TIAN"), ("董", "DONG"), ("潘", "PAN"),
            ("袁", "YUAN"), ("蔡", "CAI"), ("蒋", "JIANG"), ("余", "YU"), ("于", "YU"), ("杜", "DU"),
            ("叶", "YE"), ("程", "CHENG"), ("魏", "WEI"), ("苏", "SU"), ("吕", "LV"), ("丁", "DING"),
            ("任", "REN"), ("卢", "LU"), ("姚", "YAO"), ("沈", "SHEN"), ("钟", "ZHONG"), ("姜", "JIANG"),
            ("崔", "CUI"), ("谭", "TAN"), ("陆", "LU"), ("范", "FAN"), ("汪", "WANG"), ("廖", "LIAO"),
            ("欧阳", "OUYANG"), ("司马", "SIMA")]
GIVEN_CHILD = [("梓", "ZI"), ("涵", "HAN"), ("子", "ZI"), ("轩", "XUAN"), ("浩", "HAO"), ("宇", "YU"),
               ("欣", "XIN"), ("怡", "YI"), ("一", "YI"), ("诺", "NUO"), ("雨", "YU"), ("桐", "TONG"),
               ("睿", "RUI"), ("泽", "ZE"), ("思", "SI"), ("琪", "QI"), ("嘉", "JIA"), ("俊", "JUN"),
               ("博", "BO"), ("文", "WEN"), ("若", "RUO"), ("汐", "XI"), ("沐", "MU"), ("晨", "CHEN"),
               ("悦", "YUE"), ("昊", "HAO"), ("然", "RAN"), ("可", "KE"), ("馨", "XIN"), ("铭", "MING"),
               ("奕", "YI"), ("辰", "CHEN"), ("安", "AN"), ("乐", "LE"), ("瑶", "YAO"), ("钰", "YU"),
               ("晴", "QING"), ("航", "HANG"), ("煜", "YU"), ("萱", "XUAN"), ("宸", "CHEN"), ("彤", "TONG")]
GIVEN_MEN = [("建", "JIAN"), ("国", "GUO"), ("伟", "WEI"), ("强", "QIANG"), ("军", "JUN"), ("勇", "YONG"),
             ("杰", "JIE"), ("涛", "TAO"), ("明", "MING"), ("超", "CHAO"), ("平", "PING"), ("刚", "GANG"),
             ("华", "HUA"), ("斌", "BIN"), ("磊", "LEI"), ("鹏", "PENG")]
GIVEN_WOMEN = [("芳", "FANG"), ("丽", "LI"), ("敏", "MIN"), ("静", "JING"), ("艳", "YAN"), ("娟", "JUAN"),
               ("秀", "XIU"), ("霞", "XIA"), ("桂", "GUI"), ("英", "YING"), ("红", "HONG"), ("玲", "LING"),
               ("燕", "YAN"), ("慧", "HUI"), ("婷", "TING"), ("琳", "LIN")]
# (region code, province, city, district) for 身份证 prefixes and addresses
REGIONS = [("110105", "北京市", "北京市", "朝阳区"), ("310104", "上海市", "上海市", "徐汇区"),
           ("440106", "广东省", "广州市", "天河区"), ("510107", "四川省", "成都市", "武侯区"),
           ("330106", "浙江省", "杭州市", "西湖区"), ("420106", "湖北省", "武汉市", "武昌区"),
           ("320102", "江苏省", "南京市", "玄武区"), ("500103", "重庆市", "重庆市", "渝中区"),
           ("610113", "陕西省", "西安市", "雁塔区"), ("370102", "山东省", "济南市", "历下区"),
           ("430104", "湖南省", "长沙市", "岳麓区"), ("350102", "福建省", "福州市", "鼓楼区")]
ROADS = ["人民路", "解放路", "中山路", "建设大道", "和平街", "长江路", "黄河路", "学府路", "文化路", "科技园路"]
COMMUNITIES = ["阳光花园", "幸福里小区", "锦绣家园", "翠湖苑", "金色港湾", "书香名邸", "滨江花园", "丽景湾"]
HOSPITALS = ["市儿童医院", "妇女儿童医疗中心", "大学附属儿童医院", "人民医院儿科", "儿童医学中心"]
MOBILE_PREFIXES = ["130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "157",
                   "158", "159", "166", "177", "180", "181", "186", "187", "188", "189", "199"]
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def id_checksum(first17: str) -> str:
    """GB 11643-1999 check character for the first 17 digits of a 身份证 number."""
    total = sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS))
    return ID_CHECK[total % 11]


def id_number_valid(number: str) -> bool:
    return (len(number) == 18 and number[:17].isdigit() and number[17] in "0123456789X"
            and id_checksum(number[:17]) == number[17])


def _pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))]


@dataclass
class Person:
    name: str          # 张小明
    pinyin: str        # ZHANG^XIAOMING (DICOM PN alphabetic group)

    @property
    def surname(self) -> str:
        return self.name[:2] if self.pinyin.split("^")[0] in ("OUYANG", "SIMA") else self.name[0]


def make_person(rng: np.random.Generator, surname: tuple[str, str] | None = None, adult: str | None = None
                ) -> Person:
    """A name; ``adult`` is None for a child, "M" or "F" for a parent or clinician."""
    sur = surname or _pick(rng, SURNAMES)
    pool = GIVEN_CHILD if adult is None else (GIVEN_MEN if adult == "M" else GIVEN_WOMEN)
    n = 1 if rng.random() < 0.3 else 2
    given = [_pick(rng, pool) for _ in range(n)]
    return Person(sur[0] + "".join(g[0] for g in given), f"{sur[1]}^{''.join(g[1] for g in given)}")


@dataclass
class Identity:
    """Everything identifying about one child and their family, as a hospital system would hold it."""

    patient: Person
    sex: str
    birth_date: dt.date
    mother: Person
    father: Person
    id_number: str
    phones: list[str]
    address: str
    outpatient_no: str   # 门诊号
    inpatient_no: str    # 住院号
    record_no: str       # 病案号
    extra: dict = field(default_factory=dict)

    def identifiers(self) -> list[tuple[str, str]]:
        """(kind, value) of every identifier of this identity, for the ground truth."""
        out = [("patient_name", self.patient.name), ("patient_name_pinyin", self.patient.pinyin),
               ("guardian_name", self.mother.name), ("guardian_name", self.father.name),
               ("id_number", self.id_number), ("address", self.address), ("outpatient_no", self.outpatient_no),
               ("inpatient_no", self.inpatient_no), ("record_no", self.record_no),
               ("birth_date", self.birth_date.isoformat())]
        out += [("phone", p) for p in self.phones]
        return out


def make_identity(rng: np.random.Generator, sex: str, birth_date: dt.date) -> Identity:
    sur = _pick(rng, SURNAMES)
    patient = make_person(rng, sur)
    father = make_person(rng, sur, adult="M")
    mother = make_person(rng, None, adult="F")
    region = _pick(rng, REGIONS)
    seq = int(rng.integers(0, 100)) * 10 + (int(rng.integers(0, 5)) * 2 + (1 if sex == "M" else 0))
    first17 = f"{region[0]}{birth_date:%Y%m%d}{seq:03d}"
    id_number = first17 + id_checksum(first17)
    phones = [_pick(rng, MOBILE_PREFIXES) + "".join(str(d) for d in rng.integers(0, 10, 8))]
    if rng.random() < 0.3:
        phones.append(f"0{int(rng.integers(10, 99))}-{int(rng.integers(20000000, 89999999))}")
    address = (f"{region[1]}{region[2] if region[2] != region[1] else ''}{region[3]}{_pick(rng, ROADS)}"
               f"{int(rng.integers(1, 400))}号{_pick(rng, COMMUNITIES)}{int(rng.integers(1, 30))}栋"
               f"{int(rng.integers(1, 30))}0{int(rng.integers(1, 6))}室")
    return Identity(patient, sex, birth_date, mother, father, id_number, phones, address,
                    outpatient_no=f"{int(rng.integers(10**9, 10**10))}",
                    inpatient_no=f"{int(rng.integers(10**6, 10**7))}",
                    record_no=f"BA{int(rng.integers(10**7, 10**8))}")


def make_doctor(rng: np.random.Generator) -> Person:
    return make_person(rng, adult="M" if rng.random() < 0.5 else "F")


def make_institution(rng: np.random.Generator) -> str:
    region = _pick(rng, REGIONS)
    return region[2].rstrip("市") + _pick(rng, HOSPITALS)
