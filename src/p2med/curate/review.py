"""The specialists' review of the benchmark (the paper had two specialists verify every sample).

``write_review_sheet`` writes ``review.csv`` (one row per sample: its input, its reference, two reviewers'
verdict and comment columns to fill) and ``review.html`` (the same, readable, with previews of the images
embedded, no external assets). ``apply_review`` reads the filled sheet (or a long CSV of
``sample_id, reviewer, verdict, comment``), drops rejected samples, keeps them in ``rejected.jsonl`` and
reports agreement between the reviewers (percent agreement and Cohen's kappa).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path

import numpy as np

from ..common.atomic import write_json, write_jsonl, write_text
from ..common.errors import P2MedError

VERDICTS = ("accept", "reject")
SHEET_FIELDS = ("sample_id", "task", "lang", "categories", "input", "reference",
                "reviewer_1_verdict", "reviewer_1_comment", "reviewer_2_verdict", "reviewer_2_comment")


def _preview(sample: dict, cache_dir: Path | None, size: int = 112) -> str | None:
    """A PNG (base64) of the evaluated turn's images: X-ray views side by side, CT as 6 slices."""
    if cache_dir is None or not sample["images"]:
        return None
    from PIL import Image

    tiles = []
    for i in sample["turns"][-1]["images"]:
        img = sample["images"][i]
        arr = np.load(Path(cache_dir) / img["array"]).astype(np.float32)   # [S, H, W] in 0..1
        n = int(img.get("true_slices") or arr.shape[0])
        picks = np.linspace(0, n - 1, num=min(6, n)).round().astype(int)
        for k in picks:
            tile = Image.fromarray((np.clip(arr[k], 0, 1) * 255).astype(np.uint8)).resize((size, size))
            tiles.append(np.asarray(tile))
    strip = np.concatenate(tiles, axis=1)
    buf = io.BytesIO()
    Image.fromarray(strip).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def write_review_sheet(folder: Path, samples: list[dict], cache_dir: Path | None) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SHEET_FIELDS, lineterminator="\n")
    writer.writeheader()
    rows_html = []
    for s in samples:
        last = s["turns"][-1]
        writer.writerow({"sample_id": s["sample_id"], "task": s["task"], "lang": s["lang"],
                         "categories": "|".join(s["categories"]), "input": last["human"],
                         "reference": last["assistant"]})
        png = _preview(s, cache_dir)
        img = f'<img alt="preview" src="data:image/png;base64,{png}">' if png else ""
        priors = f"<p class=m>{len(s['turns']) - 1} prior exam(s) in the conversation</p>" if len(s["turns"]) > 1 else ""
        rows_html.append(
            f"<section><h3>{html.escape(s['sample_id'])} <small>{html.escape(s['task'])} · "
            f"{html.escape(' | '.join(s['categories']))}</small></h3>{priors}{img}"
            f"<h4>Input</h4><pre>{html.escape(last['human'])}</pre>"
            f"<h4>Reference</h4><pre>{html.escape(last['assistant'])}</pre></section>")
    write_text(folder / "review.csv", "\ufeff" + buf.getvalue())
    page = ("<!doctype html><meta charset=utf-8><title>P2Med benchmark review</title><style>"
            "body{font-family:sans-serif;max-width:60em;margin:auto}pre{white-space:pre-wrap;background:#f6f6f6;"
            "padding:.5em}section{border-bottom:1px solid #ccc;padding:1em 0}.m{color:#666}</style>"
            f"<h1>Benchmark review ({len(samples)} samples)</h1><p>Fill the verdict columns of review.csv "
            "(accept / reject, a comment for each reject), then run <code>p2med review DATASET --verdicts "
            "review.csv</code>.</p>" + "".join(rows_html))
    write_text(folder / "review.html", page)


def read_verdicts(path: Path) -> dict[str, dict[str, str]]:
    """sample_id -> reviewer -> verdict, from the filled sheet or a long CSV (sample_id, reviewer, verdict)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise P2MedError(f"{path}: cannot read the verdicts ({exc}); save the sheet as UTF-8 CSV") from exc
    reader = csv.DictReader(io.StringIO(text))
    out: dict[str, dict[str, str]] = {}
    long_form = reader.fieldnames and "reviewer" in reader.fieldnames
    for line, row in enumerate(reader, 2):
        sid = (row.get("sample_id") or "").strip()
        if not sid:
            raise P2MedError(f"{path}:{line} sample_id: empty")
        pairs = [(row["reviewer"], row.get("verdict"))] if long_form else \
            [(r, row.get(f"{r}_verdict")) for r in ("reviewer_1", "reviewer_2")]
        for reviewer, verdict in pairs:
            verdict = (verdict or "").strip().lower()
            if not verdict:
                continue
            if verdict not in VERDICTS:
                raise P2MedError(f"{path}:{line} verdict: expected accept or reject, got {verdict!r}")
            out.setdefault(sid, {})[reviewer.strip()] = verdict
    return out


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    if not a:
        return None
    n = len(a)
    po = sum(x == y for x, y in zip(a, b)) / n
    pe = sum((a.count(v) / n) * (b.count(v) / n) for v in VERDICTS)
    return None if pe == 1 else (po - pe) / (1 - pe)


def apply_review(folder: Path, verdicts_path: Path) -> dict:
    """Drop rejected samples (any reviewer rejects); returns the agreement summary (also review_summary.json)."""
    folder = Path(folder)
    original = folder / "samples.unreviewed.jsonl"
    source = original if original.exists() else folder / "samples.jsonl"
    samples = [json.loads(l) for l in source.read_text(encoding="utf-8").splitlines() if l.strip()]
    if not original.exists():
        write_jsonl(original, samples)
    verdicts = read_verdicts(verdicts_path)
    unknown = sorted(set(verdicts) - {s["sample_id"] for s in samples})
    if unknown:
        raise P2MedError(f"{verdicts_path}: {len(unknown)} sample_id(s) not in the benchmark, e.g. {unknown[0]!r}")
    reviewers = sorted({r for v in verdicts.values() for r in v})
    kept, rejected = [], []
    for s in samples:
        v = verdicts.get(s["sample_id"], {})
        (rejected if "reject" in v.values() else kept).append(s)
    both = [v for v in verdicts.values() if len(v) >= 2]
    a = [v[reviewers[0]] for v in both if reviewers[0] in v and reviewers[1] in v] if len(reviewers) >= 2 else []
    b = [v[reviewers[1]] for v in both if reviewers[0] in v and reviewers[1] in v] if len(reviewers) >= 2 else []
    summary = {"reviewers": reviewers, "samples": len(samples), "reviewed": len(verdicts),
               "unreviewed": len(samples) - len(verdicts), "rejected": len(rejected), "kept": len(kept),
               "double_reviewed": len(a),
               "percent_agreement": (sum(x == y for x, y in zip(a, b)) / len(a)) if a else None,
               "cohen_kappa": cohen_kappa(a, b)}
    write_jsonl(folder / "samples.jsonl", kept)
    write_jsonl(folder / "rejected.jsonl", rejected)
    write_json(folder / "review_summary.json", summary)
    return summary
