"""Per-item scores: one item is one component (output section) of one sample's last turn.

Each item gets NLG metrics (per task/component/language group, so CIDEr's IDF is that corpus's), clinical
metrics (finding F1 for X-ray/CT findings and impressions, diagnosis F1 for impressions and diagnoses) and judge
scores. A section the model did not produce is an item with ``missing=True``: it is scored as an empty text
(0 for NLG and for the clinical metrics) and as 1, the rubric's floor, by the judge, and it is counted.
A judging that fails after its retries leaves the score None (not averaged, counted as failed). Every judge
call is cached in ``judge_raw.jsonl`` (raw outputs included) so an interrupted run resumes.
Example item: ``{"sample_id": "...", "task": "ct_report", "component": "impression", "missing": False,
"metrics": {"rouge_l": 0.71, "diagnosis_f1": 1.0, "judge_accuracy": 4, ...}, "judge": {"accuracy": "ok"}}``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from ..clinical.scoring import ClinicalScorer, Tally
from ..common.atomic import write_jsonl
from ..text.sections import parse_sections
from .benchmark import DIAGNOSIS_KEYS, FINDING_KEYS, IMAGE_TASKS, Sample, components
from .judge import Judge
from .metrics import corpus_bleu, cider_d, nlg_scores

JUDGE_RAW = "judge_raw.jsonl"
CLINICAL = ("finding_f1", "finding_precision", "finding_recall", "finding_f1_side", "finding_f1_pattern", "change_f1",
            "diagnosis_f1", "diagnosis_precision", "diagnosis_recall")


def build_items(samples: list[Sample], outputs: dict[str, str]) -> list[dict]:
    """Parse every answer into its sections and pair each expected section with its reference."""
    items = []
    for s in samples:
        parsed = parse_sections(outputs[s.sample_id], s.output_keys)
        for key, metrics in components(s.task, s.output_keys):
            items.append({"sample_id": s.sample_id, "task": s.task, "component": key, "lang": s.lang,
                          "judge_metrics": list(metrics), "missing": key in parsed.missing,
                          "reference": s.target[key], "candidate": parsed.sections.get(key, ""),
                          "facets": s.facets(), "metrics": {}, "judge": {}})
    return items


def score_text_metrics(items: list[dict], clinical: ClinicalScorer) -> dict:
    """Fill NLG and clinical metrics; returns corpus-level figures per task/component."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for it in items:
        groups[(it["task"], it["component"], it["lang"])].append(it)
    corpus: dict = defaultdict(dict)
    for (task, comp, lang), group in sorted(groups.items()):
        hyps, refs = [it["candidate"] for it in group], [it["reference"] for it in group]
        for name, values in nlg_scores(hyps, refs, lang).items():
            for it, v in zip(group, values):
                it["metrics"][name] = v
        entry = {"n": len(group), "bleu4_corpus": corpus_bleu(hyps, refs, lang, 4),
                 "cider_corpus": cider_d(hyps, refs, lang)[0]}
        if task in IMAGE_TASKS and comp in FINDING_KEYS:
            tally = Tally(classify=lambda k: k[0])
            for it in group:
                f = clinical.findings(it["reference"], it["candidate"], lang)
                it["metrics"].update({"finding_f1": f["full"].f1, "finding_precision": f["full"].precision,
                                      "finding_recall": f["full"].recall, "finding_f1_side": f["side"].f1,
                                      "finding_f1_pattern": f["pattern"].f1,
                                      "change_f1": None if f["change"] is None else f["change"].f1})
                tally.add(f["keys"]["reference"], f["keys"]["candidate"])
            entry["findings"] = tally.to_json()
        if comp in DIAGNOSIS_KEYS:
            tally = Tally()
            for it in group:
                prf, ref, cand = clinical.diagnoses(it["reference"], it["candidate"], lang)
                it["metrics"].update({"diagnosis_f1": prf.f1, "diagnosis_precision": prf.precision,
                                      "diagnosis_recall": prf.recall})
                tally.add(ref, cand)
            entry["diagnoses"] = tally.to_json()
        for it in group:
            if it["missing"]:  # an absent section never 'agrees' with a normal reference
                it["metrics"].update({k: 0.0 for k, v in it["metrics"].items() if k in CLINICAL and v is not None})
        key = comp if lang == "zh" else f"{comp}[{lang}]"
        corpus[task][key] = entry
    return dict(corpus)


def critical_by_sample(samples: list[Sample], outputs: dict[str, str], clinical: ClinicalScorer) -> dict[str, dict]:
    """Critical findings of the reference report that the whole generated answer does not mention (side-level)."""
    out = {}
    for s in samples:
        if s.task not in IMAGE_TASKS:
            continue
        ref = "。".join(s.target[k] for k in s.output_keys if k in FINDING_KEYS)
        f = clinical.findings(ref, outputs[s.sample_id], s.lang)
        out[s.sample_id] = {"total": f["critical_total"], "missed": f["critical_missed"]}
    return out


class JudgeCache:
    """``judge_raw.jsonl``: one row per judge call group (main, swapped, repeatK), resumable, sorted on save."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / JUDGE_RAW
        self.rows: dict[str, dict] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.rows[row["key"]] = row
        self._fh = None

    def get(self, key: str) -> dict | None:
        return self.rows.get(key)

    def put(self, row: dict) -> None:
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")
        self.rows[row["key"]] = row
        self._fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        self._fh.flush()

    def save(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        write_jsonl(self.path, [self.rows[k] for k in sorted(self.rows)])


def judge_items(items: list[dict], judge: Judge, cache: JudgeCache, position_swap: bool, repeats: int,
                repeat_temperature: float, repeat_samples: set[str], progress: bool = True) -> None:
    """Fill ``judge_<metric>`` scores (main, temperature 0) and run the reliability variants into the cache."""
    from tqdm import tqdm

    jobs = []
    for it in items:
        for metric in it["judge_metrics"]:
            if it["missing"]:
                it["metrics"][f"judge_{metric}"] = 1
                it["judge"][metric] = "missing_section"
                continue
            variants = ["main"] + (["swapped"] if position_swap else [])
            if it["sample_id"] in repeat_samples:
                variants += [f"repeat{k}" for k in range(1, repeats + 1)]
            jobs += [(it, metric, v) for v in variants]
    def key_of(it: dict, metric: str, variant: str) -> str:
        return f"{it['sample_id']}|{it['component']}|{metric}|{variant}"

    if any(cache.get(key_of(*job)) is None for job in jobs):
        judge.ping()
    for it, metric, variant in tqdm(jobs, desc="judge", unit="call", disable=not progress):
        key = key_of(it, metric, variant)
        row = cache.get(key)
        if row is None:
            res = judge.judge(it["task"], it["component"], metric, it["reference"], it["candidate"], it["lang"],
                              swapped=variant == "swapped",
                              temperature=repeat_temperature if variant.startswith("repeat") else 0.0,
                              seed=int(variant[6:]) if variant.startswith("repeat") else None)
            row = {"key": key, "sample_id": it["sample_id"], "task": it["task"], "component": it["component"],
                   "metric": metric, "variant": variant, "score": res.score, "analysis": res.analysis,
                   "attempts": res.attempts, "zero_shot": judge.zero_shot(it["task"], it["component"], it["lang"])}
            cache.put(row)
        if variant == "main":
            it["metrics"][f"judge_{metric}"] = row["score"]
            it["judge"][metric] = "ok" if row["score"] is not None else "failed"
    cache.save()
