"""Chinese outpatient and inpatient records written from a sampled case (disease, child, vitals, labs).

Inputs (complaint, history, examination, tests, case summary) carry the disease's features; outputs carry
the diagnosis, basis and plan. The diagnosis words never enter the inputs. Planted identifiers (names,
phones, 身份证, record numbers, doctors) are inserted into the text and reported to the caller.
Example: ``Case(...).outpatient(rng)`` -> ``{"chief_complaint": "咳嗽5天，发热2天。", ...}``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from ..text.age import age_text
from .diseases import SECONDARY, Disease
from .phi import Identity, Person

Planted = list[tuple[str, str]]  # (kind, value) of identifiers put into a text


def duration_text(days: int) -> str:
    if days >= 365:
        return f"{days // 365}年"
    if days >= 60:
        return f"{days // 30}月"
    if days >= 14 and days % 7 == 0:
        return f"{days // 7}周"
    return f"{days}天"


def _r(rng: np.random.Generator, lo: float, hi: float, nd: int = 1) -> float:
    return round(float(rng.uniform(lo, hi)), nd)


@dataclass
class Case:
    """One illness episode of one child: everything the record writer needs, sampled once per visit."""

    disease: Disease
    identity: Identity
    age_days: int
    start: dt.date
    side: str                       # 左 / 右: the side features refer to (matches the imaging finding)
    xr_text: str | None             # findings text of the visit's first radiograph/CT (no impression)
    secondary: list[str]
    values: dict = field(default_factory=dict)
    complaints: list[tuple[str, int]] = field(default_factory=list)
    chosen: dict = field(default_factory=dict)

    @classmethod
    def sample(cls, rng: np.random.Generator, disease: Disease, identity: Identity, age_days: int,
               start: dt.date, side: str, xr_text: str | None, secondary_rate: float) -> "Case":
        case = cls(disease, identity, age_days, start, side, xr_text, [])
        lr = disease.labs_ranges
        years = age_days / 365.0
        weight = 3.3 + 0.55 * years * 12 if years < 1 else (2 * years + 8 if years < 12 else 2 * years + 10)
        temp = _r(rng, *disease.fever)
        hr = (140 if years < 1 else 120 if years < 3 else 100 if years < 10 else 85) + max(0.0, temp - 37.0) * 10
        rr = (40 if years < 1 else 30 if years < 3 else 24 if years < 10 else 20)
        if any(k in disease.name for k in ("重症", "毛细", "新生儿")):
            rr += 15
        case.values = {
            "temp": temp, "weight": round(weight * rng.uniform(0.85, 1.15), 1),
            "hr": int(hr + rng.integers(-8, 9)), "rr": int(rr + rng.integers(-4, 5)),
            "wbc": _r(rng, *lr.get("wbc", (5, 10))), "n": int(rng.uniform(*lr.get("n", (40, 60)))),
            "l": int(rng.uniform(*lr.get("l", (30, 50)))), "crp": _r(rng, *lr.get("crp", (0.5, 5))),
            "pct": _r(rng, *lr.get("pct", (0.02, 0.1)), 2), "eos": _r(rng, *lr.get("eos", (0, 3))),
            "spo2": int(rng.integers(85, 92)), "mp": int(2 ** rng.integers(6, 11)), "feno": int(rng.integers(30, 80)),
            "depth": _r(rng, 1.5, 5.0), "days": max(1, age_days), "ckmb": int(rng.integers(30, 80)),
            "alt": int(rng.integers(80, 240)), "hb": int(rng.integers(92, 109)), "k": _r(rng, 2.8, 3.4),
            "stools": int(rng.integers(4, 8)),
        }
        for sym, lo, hi, p in disease.complaints:
            if rng.random() < p or not case.complaints:
                case.complaints.append((sym, int(rng.integers(lo, hi + 1))))
        case.complaints.sort(key=lambda c: -c[1])
        for name in ("history", "signs", "labs", "recommendation", "plan"):
            feats = getattr(disease, name)
            picked = [t for t, p in feats if rng.random() < p and ("{xr}" not in t or xr_text)]
            if not picked and feats:
                usable = [t for t, _ in feats if "{xr}" not in t or xr_text]
                picked = usable[:1]
            case.chosen[name] = picked
        if rng.random() < secondary_rate:
            case.secondary = [list(SECONDARY)[int(rng.integers(len(SECONDARY)))]]
        return case

    def fill(self, text: str) -> str:
        return text.format(side=self.side, xr=(self.xr_text or "").rstrip("。"), **self.values)

    # -- building blocks -------------------------------------------------------------------------------
    def chief_complaint(self) -> str:
        return "，".join(f"{s}{duration_text(d)}" for s, d in self.complaints[:3]) + "。"

    def history(self, rng: np.random.Generator, outpatient: bool) -> str:
        first, days = self.complaints[0]
        trigger = ("无明显诱因" if rng.random() < 0.6 else "受凉后")
        text = f"患儿{duration_text(days)}前{trigger}出现{first}"
        others = [s for s, _ in self.complaints[1:]]
        if others:
            text += "，伴" + "、".join(others)
        parts = [text] + [self.fill(t) for t in self.chosen["history"]]
        labs = [self.fill(t) for t in self.chosen["labs"]]
        if outpatient and labs and rng.random() < 0.7:
            parts.append("今日我院查" + "；".join(labs))
        for sec in self.secondary:
            parts.append(self.fill(SECONDARY[sec]))
        parts.append("病程中精神" + ("可" if rng.random() < 0.5 else "稍差") + "，食欲" +
                     ("欠佳" if rng.random() < 0.5 else "尚可") + "，大小便" +
                     ("正常" if "腹泻病" not in self.secondary else "如上述"))
        return "。".join(parts) + "。"

    def physical_exam(self, rng: np.random.Generator) -> str:
        v = self.values
        head = (f"T {v['temp']}℃，P {v['hr']}次/分，R {v['rr']}次/分，体重{v['weight']}kg。神志清，精神"
                + ("反应可" if rng.random() < 0.6 else "稍软"))
        body = [self.fill(t) for t in self.chosen["signs"]]
        tail = "心音有力，律齐，各瓣膜听诊区未闻及杂音。腹软，无压痛，肝脾肋下未触及。神经系统查体未见异常"
        return head + "。" + "。".join(body) + "。" + tail + "。"

    def auxiliary(self) -> str:
        labs = [self.fill(t) for t in self.chosen["labs"]]
        if self.xr_text and not any("胸片示" in t for t in self.chosen["labs"]):
            labs.append("胸部影像：" + self.fill("{xr}"))
        return "；".join(labs) + "。" if labs else "暂无。"

    def diagnosis(self, rng: np.random.Generator) -> str:
        names = [self.disease.name] + self.secondary
        if len(names) == 1 and rng.random() < 0.5:
            return names[0]
        return "".join(f"{i}.{n}" + ("；" if i < len(names) else "") for i, n in enumerate(names, 1))

    def recommendation(self) -> str:
        return "；".join(self.fill(t) for t in self.chosen["recommendation"]) + "。"

    def plan(self, inpatient: bool) -> str:
        items = [self.fill(t) for t in self.chosen["plan"]]
        if inpatient:
            items = ["儿科护理常规，二级护理，监测生命体征", "完善三大常规、肝肾功能、心肌酶及病原学检查"] + items + ["密切观察病情变化，及时调整治疗"]
        return "".join(f"{i}.{t}；" for i, t in enumerate(items, 1)).rstrip("；") + "。"

    def basis(self) -> str:
        pts = [self.fill(t) for t in self.disease.basis]
        return "".join(f"{i}.{t}；" for i, t in enumerate(pts, 1)).rstrip("；") + "。"

    def features(self) -> str:
        sex = "男" if self.identity.sex == "M" else "女"
        syms = "、".join(s for s, _ in self.complaints)
        signs = "，".join(self.fill(t) for t in self.chosen["signs"][:2])
        labs = "；".join(self.fill(t) for t in self.chosen["labs"][:2]) or "暂无"
        return f"1.患儿，{sex}，{age_text(self.age_days, 'zh')}，急性起病。2.以{syms}为主要表现。3.查体：{signs}。4.辅助检查：{labs}。"

    # -- the four record types ---------------------------------------------------------------------------
    def outpatient(self, rng: np.random.Generator) -> dict[str, str]:
        return {"chief_complaint": self.chief_complaint(), "present_illness": self.history(rng, True),
                "physical_exam": self.physical_exam(rng), "preliminary_diagnosis": self.diagnosis(rng),
                "treatment_recommendation": self.recommendation(), "treatment_plan": self.plan(False)}

    def first_course(self, rng: np.random.Generator) -> dict[str, str]:
        hist = self.history(rng, False) + "门诊以“" + self.chief_complaint().rstrip("。") + "”收入院。"
        return {"present_illness": hist, "physical_exam": self.physical_exam(rng), "auxiliary_exam": self.auxiliary(),
                "clinical_features": self.features(), "diagnostic_basis": self.basis(),
                "admission_diagnosis": self.diagnosis(rng), "diagnosis_treatment_plan": self.plan(True)}

    def ward_round(self, rng: np.random.Generator, level: str, doctor: Person) -> dict[str, str]:
        title = "主治医师" if level == "attending_round" else "主任医师"
        v = self.values
        course = (f"今日{doctor.name}{title}查房，补充病史：患儿既往体健，按时预防接种。入院后体温最高{v['temp']}℃，"
                  + ("仍有咳嗽" if "咳嗽" in "".join(s for s, _ in self.complaints) else "症状较前稍缓解") + "。查体："
                  + "，".join(self.fill(t) for t in self.chosen["signs"][:2]) + "。")
        extra = "；".join(self.fill(SECONDARY[s]) for s in self.secondary)
        if extra:
            course += "辅助检查回报：" + extra + "。"
        basis = self.basis()
        if level == "chief_round" and self.disease.differential:
            basis += "需与" + "、".join(self.disease.differential) + "相鉴别。"
        return {"clinical_features": self.features(), "additional_history": course,
                "diagnostic_basis": basis, "current_diagnosis": self.diagnosis(rng),
                "diagnosis_treatment_plan": self.plan(True)}


def insert_phi(rng: np.random.Generator, sections: dict[str, str], identity: Identity, inpatient: bool,
               rate: float, visit_date: dt.date) -> Planted:
    """Put identifiers into a record's history the way real charts carry them; returns what was planted."""
    planted: Planted = []
    key = "present_illness" if "present_illness" in sections else "additional_history"
    text = sections[key]
    prefix, suffix = [], []
    if rng.random() < rate:
        prefix.append(f"患儿{identity.patient.name}，")
        planted.append(("patient_name", identity.patient.name))
    if rng.random() < rate:
        g = identity.mother if rng.random() < 0.6 else identity.father
        prefix.append(f"由其{'母亲' if g is identity.mother else '父亲'}{g.name}代诉病史，")
        planted.append(("guardian_name", g.name))
    if rng.random() < rate * 0.5:
        suffix.append(f"家长联系电话：{identity.phones[0]}。")
        planted.append(("phone", identity.phones[0]))
    if rng.random() < rate * 0.2:
        suffix.append(f"身份证号：{identity.id_number}。")
        planted.append(("id_number", identity.id_number))
    if rng.random() < rate * 0.5:
        no = identity.inpatient_no if inpatient else identity.outpatient_no
        suffix.append(f"{'住院号' if inpatient else '门诊号'}：{no}。")
        planted.append(("inpatient_no" if inpatient else "outpatient_no", no))
    if rng.random() < rate * 0.2:
        suffix.append(f"现住址：{identity.address}。")
        planted.append(("address", identity.address))
    if rng.random() < rate * 0.5:
        d = visit_date - dt.timedelta(days=int(rng.integers(1, 4)))
        fmt = f"{d.year}年{d.month}月{d.day}日" if rng.random() < 0.6 else d.isoformat()
        suffix.append(f"{fmt}曾于外院就诊。")
        planted.append(("date", fmt))
    if prefix and text.startswith("患儿"):
        text = text[2:]
    sections[key] = "".join(prefix) + text + "".join(suffix)
    return planted


def make_overlong(rng: np.random.Generator, sections: dict, min_chars: int = 5000) -> None:
    """Append a long, realistic-looking list of earlier test results so the record exceeds 4,000 tokens
    (``sections`` may be a whole record row: only string values count)."""
    key = "present_illness" if sections.get("present_illness") else "additional_history"
    items: list[str] = []
    while sum(len(s) for s in sections.values() if isinstance(s, str)) + sum(len(i) for i in items) < min_chars:
        day = int(rng.integers(1, 28))
        items.append(f"第{day}天复查血常规：WBC {_r(rng, 4, 20)}×10^9/L，中性粒细胞{int(rng.uniform(30, 85))}%，"
                     f"淋巴细胞{int(rng.uniform(10, 60))}%，血红蛋白{int(rng.uniform(95, 140))}g/L，"
                     f"血小板{int(rng.uniform(150, 450))}×10^9/L，CRP {_r(rng, 0.5, 90)}mg/L")
    sections[key] += "既往多次检查结果：" + "；".join(items) + "。"
