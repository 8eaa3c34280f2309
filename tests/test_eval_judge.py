"""The judge against a fake OpenAI-compatible endpoint served over real HTTP on 127.0.0.1: strict parsing,
bounded retries with the reason, failures (garbage, out-of-range score, timeout, HTTP error) kept raw."""

from __future__ import annotations

import pytest

from eval_helpers import FakeJudgeServer
from p2med.eval.exemplars import load_exemplars
from p2med.eval.judge import Judge, build_messages, parse_judgement
from p2med.eval.judge_backends import OpenAIBackend

GOOD = FakeJudgeServer.GOOD


@pytest.fixture()
def server():
    with FakeJudgeServer() as s:
        yield s


def _judge(server, timeout=5.0, retries=2):
    return Judge(OpenAIBackend(server.url, "fake-judge", timeout_s=timeout), load_exemplars(), max_retries=retries,
                 max_new_tokens=64)


def test_good_answer_one_call_temperature_zero(server):
    server.script = [GOOD]
    j = _judge(server).judge("xray_report", "impression", "comprehensiveness", "右肺下野斑片影，考虑支气管肺炎。",
                             "支气管肺炎。", "zh")
    assert j.ok and j.score == 4 and len(j.attempts) == 1 and j.attempts[0]["raw"] == GOOD
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["body"]["temperature"] == 0.0
    user = req["body"]["messages"][-1]["content"]
    assert "全面性" in user and "示例" in user and "遗漏了部位和影像表现" in user  # rubric + one-shot exemplar
    assert user.index("参考答案") < user.rindex("待评估答案")


def test_garbage_then_good_retries_with_the_reason(server):
    server.script = ["这个答案还可以吧。", GOOD]
    j = _judge(server).judge("ct_report", "findings", "accuracy", "左肺下叶实变。", "左肺下叶实变。", "zh")
    assert j.score == 4 and [a["error"] is None for a in j.attempts] == [False, True]
    retry = server.requests[1]["body"]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "这个答案还可以吧。"}
    assert "最后一行不是评分" in retry[-1]["content"]


def test_out_of_range_every_time_fails_after_bounded_retries(server):
    server.script = ["分析：很好。\n评分：7"] * 5
    j = _judge(server, retries=2).judge("outpatient", "treatment_plan", "accuracy", "阿奇霉素", "阿奇霉素", "zh")
    assert not j.ok and j.score is None and len(j.attempts) == 3 and len(server.requests) == 3
    assert all(a["raw"] == "分析：很好。\n评分：7" and "7" in a["error"] for a in j.attempts)


def test_timeout_and_http_errors_are_failed_attempts(server):
    server.script = ["sleep", "http500", "not-a-completion", GOOD]
    j = _judge(server, timeout=0.2, retries=3).judge("chief_round", "current_diagnosis", "accuracy", "毛细支气管炎",
                                                     "毛细支气管炎", "zh")
    assert j.score == 4
    errors = [a["error"] for a in j.attempts]
    assert errors[0].startswith("call failed: timeout") and errors[1] == "call failed: HTTP 500"
    assert "not a chat completion" in errors[2] and errors[3] is None
    server.script = ["sleep"] * 2
    j = _judge(server, timeout=0.2, retries=1).judge("chief_round", "current_diagnosis", "accuracy", "a", "b", "zh")
    assert not j.ok and len(j.attempts) == 2 and all(a["raw"] is None for a in j.attempts)


def test_strict_parsing():
    assert parse_judgement("分析：一致。\n评分：5", "zh")[0] == 5
    assert parse_judgement("Analysis: fine.\n**Score:** 3/5", "en")[0] == 3
    assert parse_judgement("分析：一致。\n评分：4分。", "zh")[0] == 4
    for bad in ("评分：4", "分析：好。\n评分：4.5", "分析：好。\n评分：0", "分析：好\n评分：4\n补充说明", "", "分析：好。评分是四分"):
        score, _, error = parse_judgement(bad, "zh")
        assert score is None and error, bad


def test_swapped_prompt_puts_the_candidate_first():
    ex = load_exemplars().get("zh", "ct_report", "impression")
    normal = build_messages("ct_report", "impression", "accuracy", "参考甲", "候选乙", "zh", ex)[-1]["content"]
    swapped = build_messages("ct_report", "impression", "accuracy", "参考甲", "候选乙", "zh", ex, swapped=True)
    swapped = swapped[-1]["content"]
    assert normal.index("参考甲") < normal.index("候选乙") and swapped.index("候选乙") < swapped.index("参考甲")
    assert "示例" in normal and "示例" not in build_messages("ct_report", "impression", "accuracy", "a", "b", "zh",
                                                            None)[-1]["content"]


def test_a_dead_endpoint_is_one_clear_error():
    from p2med.common.errors import P2MedError

    judge = Judge(OpenAIBackend("http://127.0.0.1:9/v1", "nobody", timeout_s=1), load_exemplars())
    with pytest.raises(P2MedError, match="did not answer a test call"):
        judge.ping()
