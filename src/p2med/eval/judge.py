"""The LLM judge (SPEC section 7): our Chinese (and English) prompts, the 1-5 rubric, one-shot exemplars, the
analysis-then-score protocol, strict parsing, bounded retries, and every raw output kept.

A prompt names the task and component, the metric (accuracy or comprehensiveness), the rubric, one exemplar
(reference, candidate, analysis, score), then the item. ``swapped=True`` puts the candidate before the
reference (position bias). The answer must end with a line ``评分：N`` (``Score: N``), N an integer 1..5, after
a non-empty analysis; anything else is a failed attempt and the judge is asked again with the reason, at most
``max_retries`` times. A call that times out or errors is a failed attempt too. Knows nothing about transport
(``judge_backends``). Example: ``parse_judgement("分析：部位正确。\n评分：4", "zh")`` -> ``(4, "分析：部位正确。", None)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from ..common.errors import P2MedError
from ..export.schema import SECTIONS, TASKS
from .exemplars import Exemplar, ExemplarSet

PROMPT_VERSION = "p2med-judge-v1"
SYSTEM = {"zh": "你是一名资深儿科医师兼放射科医师，负责评估人工智能生成的病历和影像报告。请严格按照评分标准独立评估。",
          "en": "You are a senior pediatrician and radiologist who grades AI-drafted medical records and radiology "
                "reports. Follow the rubric strictly."}
METRIC = {
    "zh": {"accuracy": "准确性：待评估答案的内容是否正确，是否与医师书写的参考答案的判断一致（有无错误的发现、诊断、部位、检查、药物或处理）。",
           "comprehensiveness": "全面性：参考答案中的要点（全部诊断、病变部位与性质）是否都被待评估答案覆盖，有无遗漏。"},
    "en": {"accuracy": "Accuracy: is the candidate correct and consistent with the physician's reference (no wrong "
                       "findings, diagnoses, locations, tests, drugs or management)?",
           "comprehensiveness": "Comprehensiveness: does the candidate cover every point of the reference (all "
                                "diagnoses, locations and natures of lesions), with nothing missing?"}}
RUBRIC = {"zh": "1分：完全错误或与参考答案相矛盾；2分：大部分错误，仅少量正确；3分：部分正确，但有明显错误或遗漏；"
                "4分：基本正确，仅有细微差异；5分：与医师的判断完全一致（参考答案本身为5分）。",
          "en": "1: completely wrong or contradicting the reference; 2: mostly wrong, little correct; 3: partly "
                "correct with clear errors or omissions; 4: essentially correct, minor differences only; 5: fully "
                "consistent with the physician's judgement (the reference itself scores 5)."}
LABELS = {"zh": ("参考答案（医师书写）", "待评估答案", "分析", "评分"), "en": ("Reference (physician)", "Candidate", "Analysis", "Score")}
INSTRUCT = {"zh": "请以参考答案为标准，先写出分析，最后单独一行严格按“评分：X”的格式给出分数（X为1到5的整数）。",
            "en": "Judge against the reference. Write your analysis first, then a last line exactly of the form "
                  "\"Score: X\" with X an integer from 1 to 5."}
RETRY = {"zh": "你的回答不符合格式要求（{reason}）。请重新评估：先写分析，最后单独一行写“评分：X”，X为1到5的整数。",
         "en": "Your answer did not follow the format ({reason}). Grade again: analysis first, then a last line "
               "\"Score: X\" with X an integer from 1 to 5."}
SCORE_LINE = re.compile(r"^\W*(?:评分|得分|分数|score)\W*[:：]\s*\**\s*(-?\d+(?:\.\d+)?)\s*(?:分|/\s*5|分/5)?\W*$",
                        re.IGNORECASE)


class JudgeCallError(Exception):
    """The backend could not answer (timeout, HTTP error, malformed response); counts as a failed attempt."""


class JudgeBackend(Protocol):
    def chat(self, messages: list[dict], temperature: float, max_tokens: int, seed: int | None = None) -> str: ...

    def describe(self) -> dict: ...


def _names(task: str, key: str, lang: str) -> tuple[str, str]:
    t, zh_or_en = TASKS[task], SECTIONS[key]
    return (t.zh, zh_or_en[0]) if lang == "zh" else (t.en, zh_or_en[1])


def _block(reference: str, candidate: str, lang: str, swapped: bool) -> str:
    ref_l, cand_l = LABELS[lang][:2]
    sep = "：" if lang == "zh" else ": "
    parts = [f"{ref_l}{sep}{reference}", f"{cand_l}{sep}{candidate}"]
    return "\n".join(reversed(parts) if swapped else parts)


def build_messages(task: str, key: str, metric: str, reference: str, candidate: str, lang: str,
                   exemplar: Exemplar | None, swapped: bool = False) -> list[dict]:
    """The chat messages of one judging: system, then one user turn with rubric, exemplar and item."""
    task_name, comp_name = _names(task, key, lang)
    sep = "：" if lang == "zh" else ": "
    lines = [f"{'评估任务' if lang == 'zh' else 'Task'}{sep}{task_name} - {comp_name}",
             f"{'评估维度' if lang == 'zh' else 'Dimension'}{sep}{METRIC[lang][metric]}",
             f"{'评分标准' if lang == 'zh' else 'Rubric'}{sep}{RUBRIC[lang]}", INSTRUCT[lang], ""]
    judged = getattr(exemplar, metric, None) if exemplar else None
    if judged is not None:
        lines += ["示例：" if lang == "zh" else "Example:", _block(exemplar.reference, exemplar.candidate, lang, swapped),
                  f"{LABELS[lang][2]}{sep}{judged.analysis}", f"{LABELS[lang][3]}{sep}{judged.score}", ""]
    lines += ["现在请评估：" if lang == "zh" else "Now grade this one:", _block(reference, candidate, lang, swapped)]
    return [{"role": "system", "content": SYSTEM[lang]}, {"role": "user", "content": "\n".join(lines)}]


def parse_judgement(text: str, lang: str) -> tuple[int | None, str, str | None]:
    """(score, analysis, error): the last non-empty line must be the score line, after a non-empty analysis."""
    lines = [l for l in (text or "").strip().splitlines() if l.strip()]
    if not lines:
        return None, "", "empty answer" if lang == "en" else "回答为空"
    m = SCORE_LINE.match(lines[-1].strip())
    if not m:
        return None, "", "no score line at the end" if lang == "en" else "最后一行不是评分"
    analysis = "\n".join(lines[:-1]).strip()
    raw = m.group(1)
    if "." in raw or not 1 <= int(raw) <= 5:
        return None, analysis, (f"score {raw} is not an integer 1..5" if lang == "en" else f"分数{raw}不是1到5的整数")
    if not analysis:
        return None, "", "no analysis before the score" if lang == "en" else "评分前没有分析"
    return int(raw), analysis, None


@dataclass
class Judgement:
    score: int | None
    analysis: str
    attempts: list[dict] = field(default_factory=list)   # every raw output / error, in order

    @property
    def ok(self) -> bool:
        return self.score is not None


def judge_once(backend: JudgeBackend, messages: list[dict], lang: str, max_retries: int, max_tokens: int,
               temperature: float = 0.0, seed: int | None = None) -> Judgement:
    """Ask, parse strictly, and ask again with the reason at most ``max_retries`` times."""
    attempts: list[dict] = []
    convo = list(messages)
    for _ in range(max_retries + 1):
        try:
            raw = backend.chat(convo, temperature, max_tokens, seed)
        except JudgeCallError as exc:
            attempts.append({"raw": None, "error": f"call failed: {exc}"})
            continue
        score, analysis, error = parse_judgement(raw, lang)
        attempts.append({"raw": raw, "error": error})
        if error is None:
            return Judgement(score, analysis, attempts)
        convo = list(messages) + [{"role": "assistant", "content": raw},
                                  {"role": "user", "content": RETRY[lang].format(reason=error)}]
    return Judgement(None, "", attempts)


class Judge:
    """Judges (task, component, metric) items with one backend and one exemplar set."""

    def __init__(self, backend: JudgeBackend, exemplars: ExemplarSet, max_retries: int = 2,
                 max_new_tokens: int = 512) -> None:
        self.backend = backend
        self.exemplars = exemplars
        self.max_retries = max_retries
        self.max_new_tokens = max_new_tokens

    def judge(self, task: str, key: str, metric: str, reference: str, candidate: str, lang: str,
              swapped: bool = False, temperature: float = 0.0, seed: int | None = None) -> Judgement:
        """One judging; ``seed`` makes a sampled (temperature > 0) repeat reproducible and distinct from others."""
        ex = self.exemplars.get(lang, task, key)
        messages = build_messages(task, key, metric, reference, candidate, lang, ex, swapped)
        return judge_once(self.backend, messages, lang, self.max_retries, self.max_new_tokens, temperature, seed)

    def ping(self) -> None:
        """One tiny call before a long judging run, so a dead endpoint is one clear error, not hours of timeouts."""
        try:
            self.backend.chat([{"role": "user", "content": "ping"}], 0.0, 1)
        except JudgeCallError as exc:
            raise P2MedError(f"the judge ({self.backend.describe().get('model')}) did not answer a test call: {exc}; "
                             "check judge.url / judge.path") from exc

    def zero_shot(self, task: str, key: str, lang: str) -> bool:
        return self.exemplars.get(lang, task, key) is None

    def describe(self) -> dict:
        return {**self.backend.describe(), "prompt_version": PROMPT_VERSION, "max_retries": self.max_retries}
