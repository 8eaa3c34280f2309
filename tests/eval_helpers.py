"""Test-only pieces for the evaluation tests: a tiny benchmark written in the documented format
(docs/dataset-format.md) with an ingest-cache folder, fake generators, and a fake OpenAI-compatible judge
served over real HTTP on 127.0.0.1. Nothing here is used outside tests."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from p2med.export.schema import TASKS
from p2med.synth.findings import Finding
from p2med.synth.reports import Change, write_report
from p2med.text.sections import format_sections

AGES = (10, 200, 800, 2000, 5000)  # neonate, infant, toddler, child, adolescent
TEXT_TARGETS = {
    "outpatient": {"preliminary_diagnosis": "1.支原体肺炎；2.心肌损害", "treatment_recommendation": "完善血常规；3天后复诊。",
                   "treatment_plan": "阿奇霉素干混悬剂口服；布洛芬混悬液退热。"},
    "first_course": {"diagnostic_basis": "1.发热咳嗽5天；2.双肺湿啰音。", "admission_diagnosis": "支气管肺炎",
                     "diagnosis_treatment_plan": "1.头孢曲松钠静脉滴注抗感染；2.雾化吸入。"},
    "attending_round": {"diagnostic_basis": "1.咳嗽7天；2.CT示右肺下叶实变。", "current_diagnosis": "1.大叶性肺炎；2.胸腔积液",
                        "diagnosis_treatment_plan": "1.继续抗感染；2.胸腔穿刺。"},
    "chief_round": {"diagnostic_basis": "1.婴儿喘息3天；2.RSV阳性。", "current_diagnosis": "毛细支气管炎",
                    "diagnosis_treatment_plan": "1.吸氧；2.雾化吸入支气管舒张剂。"},
}


def _image(cache: Path, k: int, modality: str) -> dict:
    rng = np.random.default_rng(k)
    arr = (rng.integers(0, 255, (1, 8, 8), dtype=np.uint8) if modality == "XR"
           else rng.random((4, 8, 8)).astype(np.float16))
    rel = f"arrays/{k:02d}.npy"
    (cache / "arrays").mkdir(parents=True, exist_ok=True)
    np.save(cache / rel, arr)
    return {"exam_id": f"E{k}", "role": "frontal" if modality == "XR" else "nc", "array": rel, "sha256": "0" * 64,
            "shape": list(arr.shape), "true_slices": arr.shape[0]}


def write_benchmark(root: Path, bad_line: bool = False) -> Path:
    """DATASET/benchmark/samples.jsonl (+ DATASET/manifest.json naming DATASET/cache); returns the benchmark dir."""
    bench, cache = root / "benchmark", root / "cache"
    bench.mkdir(parents=True)
    rows, k = [], 0
    planted = [("XR", [Finding("patchy", "right", "lower")]), ("XR", [Finding("consolidation", "left", "upper"),
                                                                      Finding("effusion", "left", "lower")]),
               ("XR", []), ("CT", [Finding("ggo", "right", "middle")]),
               ("CT", [Finding("consolidation", "right", "lower"), Finding("effusion", "right", "lower")]), ("CT", [])]
    for i, (modality, findings) in enumerate(planted):
        task = "xray_report" if modality == "XR" else "ct_report"
        rng = np.random.default_rng(i)
        turns, images = [], []
        if i == 0:  # a multi-round conversation: a prior exam with its report, then the evaluated one
            prior = Finding("patchy", "right", "lower", size=0.2)
            f0, i0 = write_report(rng, modality, [prior])
            images.append(_image(cache, k, modality))
            k += 1
            turns.append({"source_id": "E-prior", "images": [0], "human": "影像资料<image>",
                          "assistant": format_sections({"findings": f0, "impression": i0}, ["findings", "impression"], "zh"),
                          "target": {"findings": f0, "impression": i0}})
            ftxt, itxt = write_report(rng, modality, findings, [Change(findings[0], prior, "improved")], "2022-05-01")
        else:
            ftxt, itxt = write_report(rng, modality, findings)
        images.append(_image(cache, k, modality))
        k += 1
        target = {"findings": ftxt, "impression": itxt}
        turns.append({"source_id": f"E{k}", "images": [len(images) - 1], "human": "当前影像资料如下：<image>请生成报告",
                      "assistant": format_sections(target, ["findings", "impression"], "zh"), "target": target})
        rows.append({"sample_id": f"{task}/V{i}/1", "task": task, "variant": None, "lang": "zh",
                     "patient_id": f"P{i}", "visit_id": f"V{i}", "modality": modality, "categories": [],
                     "output_keys": ["findings", "impression"], "images": images, "turns": turns,
                     "meta": {"age_days": AGES[i % 5], "sex": "MF"[i % 2], "visit_kind": "inpatient" if i % 2 else "outpatient",
                              "vendor": ["Carestream Health", "Siemens"][i % 2]}})
    for j, (task, target) in enumerate(TEXT_TARGETS.items()):
        keys = list(TASKS[task].outputs)
        for copy in range(2):
            rows.append({"sample_id": f"{task}/R{j}{copy}", "task": task, "variant": None, "lang": "zh",
                         "patient_id": f"Q{j}", "visit_id": f"W{j}", "modality": None, "categories": [],
                         "output_keys": keys, "images": [],
                         "turns": [{"source_id": f"R{j}", "images": [], "human": f"【主诉】咳嗽{copy + 2}天。请书写记录",
                                    "assistant": format_sections(target, keys, "zh"), "target": dict(target)}],
                         "meta": {"age_days": AGES[(j + copy) % 5], "sex": "FM"[copy],
                                  "visit_kind": "outpatient" if task == "outpatient" else "inpatient"}})
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    if bad_line:
        lines.insert(3, json.dumps({"sample_id": "broken/1", "task": "outpatient", "lang": "zh"}))
    (bench / "samples.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "manifest.json").write_text(json.dumps({"cache": "cache"}), encoding="utf-8")
    return bench


class FakeGenerator:
    """perfect: answers with the reference; flawed: wrong side on X-ray, no impression on CT, a wrong outpatient
    diagnosis, a chief-round plan that makes the fake judge answer garbage. Counts its calls."""

    def __init__(self, mode: str = "perfect", supports_images: bool = True) -> None:
        self.mode, self.supports_images, self.name, self.calls = mode, supports_images, f"fake-{mode}", 0

    def _answer(self, s: dict) -> str:
        last = s["turns"][-1]
        if s["task"] == "mcq":
            return "答案：A"
        text = last["assistant"]
        if self.mode == "perfect":
            return text
        t = dict(last["target"])
        keys = list(s["output_keys"])
        if s["task"] == "xray_report":
            t = {k: v.replace("右", "左") for k, v in t.items()}
        elif s["task"] == "ct_report":
            keys = ["findings"]
        elif s["task"] == "outpatient":
            t["preliminary_diagnosis"] = "支气管肺炎"
        elif s["task"] == "chief_round":
            t["diagnosis_treatment_plan"] += "GARBAGE"
        return format_sections(t, keys, "zh")

    def generate(self, samples, max_new_tokens=None):
        self.calls += 1
        return [self._answer(s) for s in samples]

    def describe(self):
        return {"kind": "fake", "name": self.name, "supports_images": self.supports_images}


class FakeJudgeServer:
    """A fake OpenAI-compatible judge on 127.0.0.1: 5 when candidate = reference, else 3; +1 when the candidate is
    shown first (a planted position bias); garbage when the candidate holds GARBAGE. ``script`` overrides the
    next answers (``sleep`` = answer late, ``http500``, ``not-a-completion``, or literal text)."""

    GOOD = "分析：部位与诊断均与参考一致。\n评分：4"

    def __init__(self) -> None:
        self.script: list[str] = []
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body})
                action = outer.script.pop(0) if outer.script else outer.grade(body["messages"])
                if action == "sleep":
                    time.sleep(0.5)
                    action = outer.GOOD
                if action == "http500":
                    self.send_response(500)
                    self.end_headers()
                    return
                payload = ({"choices": []} if action == "not-a-completion" else
                           {"choices": [{"index": 0, "message": {"role": "assistant", "content": action}}]})
                data = json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except BrokenPipeError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @staticmethod
    def grade(messages: list[dict]) -> str:
        if len(messages) == 1:
            return "pong"  # the judge's test call before a run
        item = messages[1]["content"].split("现在请评估：")[-1]
        ref = re.search(r"参考答案（医师书写）：(.*)", item).group(1)
        cand = re.search(r"待评估答案：(.*)", item).group(1)
        if "GARBAGE" in cand:
            return "嗯。"
        score = 5 if cand == ref else 3
        if item.index("待评估答案") < item.index("参考答案"):
            score = min(5, score + 1)
        return f"分析：比较参考与候选。\n评分：{score}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def tiny_causal_lm(path: Path) -> Path:
    """A 2-layer Llama with random weights and a character-level tokenizer, saved as a Hugging Face folder."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    chars = sorted(set("".join(TEXT_TARGETS[t][k] for t in TEXT_TARGETS for k in TEXT_TARGETS[t])
                       + "【】：:。，；0123456789ABCDE评分析答案请书写记录主诉咳嗽天现在估参考待候选 \n"))
    vocab = {tok: i for i, tok in enumerate(specials + chars)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>")
    fast.save_pretrained(path)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                      pad_token_id=0, bos_token_id=2, eos_token_id=3)
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path
