"""A general-medicine multiple-choice check: did fine-tuning cost the LLM its knowledge? Run it on the base LLM
and on the fine-tuned model, then ``p2med compare`` pairs the two on the same questions.

Reads MedQA-MCMLE (JSON lines: question, options {A..E}, answer_idx) and CMMLU (CSV: ,Question,A,B,C,D,Answer;
a file or a folder of subject files). A seeded sample of ``limit`` questions per source keeps it affordable.
The model sees a Chinese prompt and must answer with the option letter; the first option letter it writes on
its own is its answer, and an answer without one counts as wrong (and is counted). Example item:
``{"id": "medqa/17", "question": "...", "options": {"A": "...", ...}, "answer": "D"}``.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np

from ..common.errors import P2MedError
from .stats import mean_ci

FORMATS = ("medqa", "cmmlu")
PROMPT = "以下是中国医学考试的单项选择题，请直接给出正确答案的选项字母。\n\n{question}\n{options}\n答案："


def load_medqa(path: Path) -> list[dict]:
    if path.is_dir():
        path = path / "test.jsonl"
    items = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            items.append({"id": f"medqa/{path.stem}/{i}", "question": row["question"],
                          "options": dict(row["options"]), "answer": row["answer_idx"]})
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise P2MedError(f"{path} line {i + 1}: not a MedQA record (question, options, answer_idx): {exc}") from exc
    return items


def load_cmmlu(path: Path) -> list[dict]:
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if path.is_dir() and (path / "test").is_dir():
        files = sorted((path / "test").glob("*.csv"))
    items = []
    for f in files:
        with open(f, encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh), 2):
                try:
                    items.append({"id": f"cmmlu/{f.stem}/{i}", "question": row["Question"],
                                  "options": {k: row[k] for k in "ABCD"}, "answer": row["Answer"].strip()})
                except (KeyError, AttributeError) as exc:
                    raise P2MedError(f"{f} row {i}: not a CMMLU row (Question, A-D, Answer): {exc}") from exc
    return items


def load_source(spec: str) -> tuple[str, list[dict]]:
    """``medqa=PATH`` or ``cmmlu=PATH`` -> (name, items)."""
    fmt, _, raw = spec.partition("=")
    if fmt not in FORMATS or not raw:
        raise P2MedError(f"--mcq {spec!r}: expected FORMAT=PATH with FORMAT one of {list(FORMATS)}")
    path = Path(raw)
    if not path.exists():
        raise P2MedError(f"--mcq {spec!r}: {path} does not exist")
    items = load_medqa(path) if fmt == "medqa" else load_cmmlu(path)
    if not items:
        raise P2MedError(f"--mcq {spec!r}: no questions found")
    return fmt, items


def sample_items(items: list[dict], limit: int, seed: int) -> list[dict]:
    if not limit or len(items) <= limit:
        return items
    idx = sorted(np.random.default_rng(seed).choice(len(items), size=limit, replace=False).tolist())
    return [items[i] for i in idx]


def as_sample(item: dict) -> dict:
    """A text-only conversation the generators understand."""
    options = "\n".join(f"{k}. {v}" for k, v in item["options"].items())
    return {"sample_id": item["id"], "task": "mcq", "lang": "zh", "images": [],
            "turns": [{"human": PROMPT.format(question=item["question"], options=options), "assistant": ""}]}


def parse_choice(text: str, letters: str) -> str | None:
    m = re.search(f"(?<![A-Z])[{letters}](?![A-Z])", (text or "").upper())  # a letter on its own, not in a word
    return m.group(0) if m else None


def score(items: list[dict], outputs: dict[str, str], confidence: float = 0.95) -> tuple[dict, list[dict]]:
    """(summary, per-question rows) for one source."""
    rows = []
    for it in items:
        choice = parse_choice(outputs[it["id"]], "".join(it["options"]))
        rows.append({"id": it["id"], "answer": it["answer"], "choice": choice, "correct": int(choice == it["answer"])})
    acc = mean_ci([r["correct"] for r in rows], confidence)
    return {"questions": len(rows), "accuracy": acc, "unparsed": sum(r["choice"] is None for r in rows),
            "chance": round(1 / max(len(it["options"]) for it in items), 6)}, rows
