"""The evaluation report from ``results.json``: Markdown and a self-contained HTML page (inline CSS and SVG, no
external assets), with the same content: model card, counts, per-component table with CIs, CI bars, judge and its
reliability, critical findings, breakdowns, corpus figures, knowledge check, examples beside references.

The report is built as a list of sections of blocks (paragraph, table, svg) and rendered twice, so the two
formats cannot drift. A judge figure that was not computed reads "not run"; a metric that does not apply reads
"—". Example: ``render_html(json.load(open("runs/eval/results.json")))``.
"""

from __future__ import annotations

import html

from ..export.schema import SECTIONS, TASKS
from .benchmark import KEY_COMPONENTS
from .plots import ci_bars

COLUMNS = [("judge_accuracy", "Judge accuracy"), ("judge_comprehensiveness", "Judge comprehensiveness"),
           ("finding_f1", "Finding F1"), ("diagnosis_f1", "Diagnosis F1"), ("rouge_l", "ROUGE-L"),
           ("bleu4", "BLEU-4"), ("meteor", "METEOR"), ("cider", "CIDEr")]
BREAKDOWN_COLUMNS = ["judge_accuracy", "finding_f1", "diagnosis_f1", "rouge_l"]
FACET_TITLES = {"age_band": "Age band", "sex": "Sex", "modality": "Modality", "vendor": "Scanner vendor",
                "visit_kind": "Outpatient / inpatient"}
Block = tuple  # ("p", text) | ("table", headers, rows) | ("svg", markup)


def fmt(cell: dict | None, percent: bool = False) -> str:
    """Mean [CI] (n) of a ``mean_ci`` cell, as a fraction or (``percent``) in percent."""
    if not cell or cell.get("mean") is None:
        return "—"
    v = (lambda x: f"{100 * x:.1f}%") if percent else (lambda x: f"{x:.3f}")
    if cell.get("ci_low") is None:
        return f"{v(cell['mean'])} (n={cell['n']})"
    return f"{v(cell['mean'])} [{v(cell['ci_low'])}, {v(cell['ci_high'])}] (n={cell['n']})"


def _num(x) -> str:
    return "—" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))


def label(task: str, comp: str, lang: str = "en") -> str:
    comp_key = comp.split("[")[0]
    if lang == "en":
        return f"{TASKS[task].en} / {SECTIONS[comp_key][1]}"
    return f"{TASKS[task].zh}/{SECTIONS[comp_key][0]}"


SHORT_TASK = {"xray_report": "X-ray", "ct_report": "CT", "outpatient": "Outpatient", "first_course": "First course",
              "attending_round": "Attending round", "chief_round": "Chief round"}
SHORT_SECTION = {"diagnosis_treatment_plan": "Diag. & treatment plan", "treatment_recommendation": "Treatment rec.",
                 "preliminary_diagnosis": "Prelim. diagnosis", "admission_diagnosis": "Admission diagnosis"}


def short_label(task: str, comp: str) -> str:
    """A plot label short enough for the axis: 'Chief round / Diag. & treatment plan'."""
    key = comp.split("[")[0]
    return f"{SHORT_TASK[task]} / {SHORT_SECTION.get(key, SECTIONS[key][1])}"


def _cell(results: dict, task: str, comp: str, metric: str) -> str:
    if metric.startswith("judge_"):
        if metric == "judge_comprehensiveness" and (task, comp) not in KEY_COMPONENTS:
            return "—"
        if results["judge"]["status"] != "ran":
            return "not run"
    return fmt(results["summary"].get(task, {}).get(comp, {}).get(metric))


def sections(r: dict, plots: bool = True) -> list[tuple[str, list[Block]]]:
    out: list[tuple[str, list[Block]]] = []
    card = r["model_card"]
    lineage = ", ".join(f"{k}: {v}" for k, v in r["model"].items() if k != "lineage") or "—"
    out.append(("Model card", [("p", f"Intended use: {card['intended_use']}"), ("p", f"Model: {lineage}"),
                               ("p", f"Lineage: {card['lineage'].get('lineage') or 'not recorded in the checkpoint'}"),
                               ("p", f"Data: {card['data']}")] + [("p", f"Limit: {x}") for x in card["limits"]]))
    b = r["benchmark"]
    rows = [[t, n, r["not_applicable"].get(t, 0),
             sum(c["missing_section"] for c in r["counts"].get(t, {}).values()),
             sum(j.get("failed", 0) for c in r["counts"].get(t, {}).values() for j in c["judge"].values())]
            for t, n in b["tasks"].items()]
    out.append(("Benchmark and counts", [
        ("p", f"{b['samples']} samples ({b['evaluated']} evaluated, {b['quarantined']} quarantined as malformed); "
              f"languages {b['languages']}; samples.jsonl sha256 {b['samples_sha256'][:16]}…"),
        ("table", ["Task", "Samples", "Not applicable", "Missing sections", "Judge failures"], rows)]))
    rows = []
    for task in TASKS:
        if task in r["not_applicable"] and task not in r["summary"]:
            rows.append([TASKS[task].en, "not applicable (text-only model)"] + [""] * (len(COLUMNS) - 1))
        for comp in r["summary"].get(task, {}):
            rows.append([label(task, comp)] + [_cell(r, task, comp, m) for m, _ in COLUMNS])
    out.append(("Results per task and component: mean [95% CI] (n)",
                [("table", ["Task / component"] + [t for _, t in COLUMNS], rows)]))
    figures: list[Block] = []
    for metric, title, xlim in (("judge_accuracy", "Judge accuracy (1-5)", (1, 5)),
                                ("judge_comprehensiveness", "Judge comprehensiveness (1-5)", (1, 5)),
                                ("rouge_l", "ROUGE-L (characters)", (0, 1)), ("finding_f1", "Finding F1", (0, 1)),
                                ("diagnosis_f1", "Diagnosis F1", (0, 1))):
        cells = [(short_label(t, c), m[metric]) for t, comps in r["summary"].items() for c, m in comps.items()
                 if metric in m]
        svg = ci_bars(cells, title + ": mean and 95% CI", xlim) if plots else ""
        if svg:
            figures.append(("svg", svg))
    out.append(("CI bars per task and component", figures or [("p", "plots in report.html" if not plots
                                                                    else "nothing to plot")]))
    out.append(("Judge", _judge_blocks(r)))
    out.append(("Judge reliability", _reliability_blocks(r["reliability"])))
    cf = r["critical_findings"]
    out.append(("Critical findings", [("p", f"Critical patterns {cf['patterns']}: {cf['critical_findings']} in the "
                                            f"references of {cf['samples']} imaging samples, {cf['missed']} missed "
                                            f"by the model; miss rate {_num(cf['miss_rate'])}.")]))
    for facet, groups in r["breakdown"].items():
        rows = [[g, v["samples"]] + [fmt(v["metrics"].get(m)) if not (m.startswith("judge_") and
                                                                     r["judge"]["status"] != "ran") else "not run"
                                     for m in BREAKDOWN_COLUMNS] + [_num(v["critical"]["miss_rate"])]
                for g, v in groups.items()]
        out.append((f"Breakdown: {FACET_TITLES[facet]}",
                    [("table", [FACET_TITLES[facet], "Samples"] + BREAKDOWN_COLUMNS + ["critical miss rate"], rows)]))
    out.append(("Corpus-level figures", _corpus_blocks(r["corpus"])))
    out.append(("Knowledge check (multiple choice)", _mcq_blocks(r["mcq"])))
    rows = [[label(t, e["component"]) + f" ({e['sample_id']})", e["reference"],
             e["candidate"] if not e["missing"] else "(section missing)",
             ", ".join(f"{k} {_num(v)}" for k, v in sorted(e["metrics"].items()))]
            for t, ex in r["examples"].items() for e in ex]
    out.append(("Examples: model output beside the reference",
                [("table", ["Item", "Reference", "Model", "Scores"], rows)]))
    return out


def _judge_blocks(r: dict) -> list[Block]:
    j = r["judge"]
    if j["status"] != "ran":
        return [("p", f"not run: {j['reason']}")]
    desc = ", ".join(f"{k}: {j[k]}" for k in ("backend", "model", "prompt_version", "max_retries") if k in j)
    return [("p", desc), ("p", f"{j['judgings']} judgings, {j['calls']} calls; {j['failed_main']} main judgings failed "
                               "after their retries (left unscored, counted per task above)."),
            ("p", "Zero-shot (no exemplar) components: " + (", ".join(j["zero_shot_components"]) or "none"))]


def _reliability_blocks(rel: dict) -> list[Block]:
    if rel.get("status") != "ran":
        return [("p", f"not run: {rel.get('reason', '')}")]
    blocks: list[Block] = []
    pb = rel["position_bias"]
    if isinstance(pb, dict):
        rows = [[m, v.get("n"), _num(v.get("mean_diff")), f"[{_num(v.get('bootstrap_ci_low'))}, "
                 f"{_num(v.get('bootstrap_ci_high'))}]", _num(v.get("p")), _num(v.get("share_changed"))]
                for m, v in pb.items()]
        blocks += [("p", "Position bias: score with the candidate shown first minus score with the reference first."),
                   ("table", ["Metric", "n", "Mean change", "Bootstrap 95% CI", "paired t p", "Share changed"], rows)]
    else:
        blocks.append(("p", f"Position bias: {pb}"))
    rv = rel["repeat_variance"]
    if isinstance(rv, dict):
        rows = [[m, v["items"], v["judgings_per_item"], _num(v["mean_sd"]), _num(v["share_varying"])]
                for m, v in rv.items()]
        blocks += [("p", "Score variance over repeated judging (main at temperature 0 plus sampled repeats)."),
                   ("table", ["Metric", "Items", "Judgings per item", "Mean SD", "Share varying"], rows)]
    else:
        blocks.append(("p", f"Repeat variance: {rv}"))
    rows = [[m, v["n"], _num(v["spearman_length"]), _num(v["spearman_length_ratio"]),
             _num(v["mean_score_longer_than_reference"]), _num(v["mean_score_not_longer"])]
            for m, v in rel["length_bias"].items()]
    blocks += [("p", "Length bias: does a longer answer get a higher score?"),
               ("table", ["Metric", "n", "Spearman (length)", "Spearman (length ratio)", "Mean score, longer",
                          "Mean score, not longer"], rows)]
    ca = rel["clinician_agreement"]
    if isinstance(ca, dict):
        rows = [[who, v["n"], _num(v["kappa_quadratic"]), _num(v["kappa_linear"]), _num(v["spearman"]),
                 _num(v["exact_agreement"])] for part in ("raters", "between_raters") for who, v in ca[part].items()]
        blocks += [("p", f"Agreement with clinicians (judge vs each rater, then raters with each other); "
                         f"{ca['unmatched_rows']} clinician rows had no judged item."),
                   ("table", ["Rater", "n", "Weighted kappa (quadratic)", "Weighted kappa (linear)", "Spearman",
                              "Exact agreement"], rows)]
    else:
        blocks.append(("p", f"Agreement with clinicians: {ca} (give --clinician-scores CSV)"))
    return blocks


def _corpus_blocks(corpus: dict) -> list[Block]:
    rows = [[label(t, c), v["n"], _num(v["bleu4_corpus"]), _num(v["cider_corpus"]),
             _num(v.get("findings", {}).get("micro", {}).get("f1")),
             _num(v.get("diagnoses", {}).get("micro", {}).get("f1"))]
            for t, comps in corpus.items() for c, v in comps.items()]
    blocks: list[Block] = [("table", ["Task / component", "n", "BLEU-4 (corpus)", "CIDEr-D (corpus IDF)",
                                      "Finding micro F1", "Diagnosis micro F1"], rows)]
    per = {}
    for t, comps in corpus.items():
        for c, v in comps.items():
            for kind in ("findings", "diagnoses"):
                for cls, prf in v.get(kind, {}).get("per_class", {}).items():
                    per[(label(t, c), cls)] = prf
    rows = [[where, cls, prf["support"], _num(prf["precision"]), _num(prf["recall"]), _num(prf["f1"])]
            for (where, cls), prf in sorted(per.items(), key=lambda kv: (kv[0][0], -kv[1]["support"], kv[0][1]))]
    blocks.append(("table", ["Task / component", "Finding pattern or diagnosis", "Support", "Precision", "Recall",
                             "F1"], rows))
    return blocks


def _mcq_blocks(mcq: dict) -> list[Block]:
    if mcq.get("status") != "ran":
        return [("p", "not run (give --mcq medqa=PATH and/or --mcq cmmlu=PATH; run it on the base LLM too and "
                      "`p2med compare` the two runs)")]
    rows = [[name, v["questions"], fmt(v["accuracy"]), v["unparsed"], _num(v["chance"])]
            for name, v in mcq.items() if name != "status"]
    return [("table", ["Source", "Questions", "Accuracy", "No answer letter", "Chance"], rows)]


def render_markdown(r: dict) -> str:
    def esc(x) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = [f"# P2Med evaluation: {r['model'].get('name')} on {r['benchmark']['name']}", ""]
    for title, blocks in sections(r, plots=False):
        lines += [f"## {title}", ""]
        for b in blocks:
            if b[0] == "p":
                lines += [b[1], ""]
            elif b[0] == "table":
                lines += ["| " + " | ".join(esc(h) for h in b[1]) + " |", "|" + "---|" * len(b[1])]
                lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in b[2]] + [""]
    return "\n".join(lines).rstrip() + "\n"


CSS = """body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","Microsoft YaHei",sans-serif;
margin:2em auto;max-width:1200px;padding:0 1em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em;
font-size:13px}th,td{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left}th{background:#f2f4f7}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}svg{max-width:100%;height:auto}
.card{background:#f8faf8;border-left:4px solid #5b8db8;padding:.5em 1em}"""


def render_html(r: dict) -> str:
    e = html.escape
    title = f"P2Med evaluation: {r['model'].get('name')} on {r['benchmark']['name']}"
    parts = ["<!DOCTYPE html>", "<html lang=\"zh\"><head><meta charset=\"utf-8\">", f"<title>{e(title)}</title>",
             f"<style>{CSS}</style></head><body>", f"<h1>{e(title)}</h1>"]
    for i, (sec_title, blocks) in enumerate(sections(r)):
        parts.append(f"<h2>{e(sec_title)}</h2>")
        if i == 0:
            parts.append("<div class=\"card\">")
        for b in blocks:
            if b[0] == "p":
                parts.append(f"<p>{e(b[1])}</p>")
            elif b[0] == "table":
                head = "".join(f"<th>{e(str(h))}</th>" for h in b[1])
                body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in b[2])
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif b[0] == "svg":
                parts.append(f"<figure>{b[1]}</figure>")
        if i == 0:
            parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
