"""The demo's self-contained HTML report (no external assets): the figures of the full model beside the
shuffled-image control, chance and the non-LLM baselines, each with its 95% CI, a chart, what was trained
how, and example answers beside their references. Written next to ``results.json``.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from ..common.atomic import write_text
from ..eval.report import fmt

FIGURES = [("xray_report", "finding_location", "X-ray: finding + side + zone"),
           ("ct_report", "finding_location", "CT: finding + side + lobe"),
           ("xray_report", "change", "X-ray follow-up: finding + location + change"),
           ("ct_report", "change", "CT follow-up: finding + location + change"),
           ("xray_report", "change_state", "X-ray follow-up: change word alone"),
           ("ct_report", "change_state", "CT follow-up: change word alone"),
           ("outpatient", "diagnosis", "Outpatient: diagnosis"),
           ("first_course", "diagnosis", "First course: diagnosis"),
           ("attending_round", "diagnosis", "Attending round: diagnosis"),
           ("chief_round", "diagnosis", "Chief round: diagnosis")]


def _fmt(ci: dict | None) -> str:
    return fmt(ci, percent=True)


def _chart(results: dict) -> str:
    from ..common.plots import pyplot

    plt = pyplot()
    rows = [(label, t, f) for t, f, label in FIGURES if results["model"].get(t, {}).get(f)]
    fig, ax = plt.subplots(figsize=(9, 0.5 + 0.55 * len(rows)))
    series = [("model", "#2e6da4", "full model"), ("shuffled", "#d9822b", "shuffled images")]
    for k, (key, color, name) in enumerate(series):
        ys, xs, lo, hi = [], [], [], []
        for i, (_, t, f) in enumerate(rows):
            ci = results[key].get(t, {}).get(f)
            if ci and ci.get("mean") is not None:
                ys.append(i + 0.2 * (k - 0.5) * 2)
                xs.append(100 * ci["mean"])
                lo.append(100 * (ci["mean"] - (ci["ci_low"] if ci["ci_low"] is not None else ci["mean"])))
                hi.append(100 * ((ci["ci_high"] if ci["ci_high"] is not None else ci["mean"]) - ci["mean"]))
        ax.barh(ys, xs, height=0.38, color=color, xerr=[lo, hi], capsize=3, label=name)
    for i, (_, t, f) in enumerate(rows):
        c = results["chance"].get(t, {}).get(f)
        if c is not None:
            ax.plot([100 * c, 100 * c], [i - 0.45, i + 0.45], color="black", lw=1.5,
                    label="chance (best constant answer)" if i == 0 else None)
        r = results.get("swapped_reader", {}).get(t, {}).get(f)
        if r is not None:
            ax.plot([100 * r], [i + 0.2], marker="v", color="#d9822b", markeredgecolor="black", ls="none",
                    label="a perfect reader on the shuffled images" if i == 0 else None)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("correct on the held-out hospital (%), 95% CI")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def write_report(out: Path, results: dict, examples: list[dict]) -> Path:
    """``out/report.html`` from ``results`` (the content of results.json) and a few example answers."""
    rows = []
    for t, f, label in FIGURES:
        if not results["model"].get(t, {}).get(f):
            continue
        base = results["baselines"].get(t, {}).get(f)
        reader = results.get("swapped_reader", {}).get(t, {}).get(f)
        rows.append(f"<tr><td>{html.escape(label)}</td><td>{_fmt(results['model'][t][f])}</td>"
                    f"<td>{_fmt(results['shuffled'].get(t, {}).get(f))}"
                    f"{f' (a perfect reader: {100 * reader:.1f}%)' if reader is not None else ''}</td>"
                    f"<td>{100 * results['chance'].get(t, {}).get(f, float('nan')):.1f}%</td>"
                    f"<td>{_fmt(base['ci']) + ' ' + html.escape(base['name']) if base else '—'}</td></tr>")
    targets = "".join(f"<li>{html.escape(k)}: {'met' if v['met'] else 'not met'} ({html.escape(v['detail'])})</li>"
                      for k, v in results["targets"].items())
    ex = "".join(f"<tr><td>{html.escape(e['sample_id'])}</td><td><pre>{html.escape(e['reference'])}</pre></td>"
                 f"<td><pre>{html.escape(e['model'])}</pre></td><td><pre>{html.escape(e['shuffled'])}</pre></td></tr>"
                 for e in examples)
    training = "".join(f"<li>{html.escape(line)}</li>" for line in results["training"]["notes"])
    nlg = results.get("nlg", {})
    nlg_rows = "".join(f"<tr><td>{html.escape(t)}</td>" + "".join(
        f"<td>{v:.3f}</td>" if isinstance(v, (int, float)) else "<td>—</td>" for v in m.values()) + "</tr>"
        for t, m in nlg.items())
    nlg_head = "".join(f"<th>{html.escape(k)}</th>" for k in next(iter(nlg.values()), {}))
    page = f"""<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>P2Med demo report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}table{{border-collapse:collapse;
margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top;font-size:14px}}pre{{white-space:
pre-wrap;margin:0;font-size:12px}}</style></head><body>
<h1>P2Med demo: does the model use the images and the records?</h1>
<p>Trained on a synthetic hospital (seed {results['hospitals']['train']['seed']}, {results['hospitals']['train']['patients']}
patients) and evaluated on a held-out hospital (seed {results['hospitals']['held_out']['seed']},
{results['hospitals']['held_out']['patients']} patients) that training never saw. Every figure is the share of
held-out samples answered correctly with its 95% t-interval; labels come from the report text through the
evaluation's extractor.</p>
<h2>Targets</h2><ul>{targets}</ul>
<img alt="figures with confidence intervals" src="data:image/png;base64,{_chart(results)}">
<table><tr><th>figure</th><th>full model</th><th>shuffled images</th><th>chance</th><th>non-LLM baseline</th></tr>
{''.join(rows)}</table>
<h2>Text metrics (held-out, full model)</h2><table><tr><th>task</th>{nlg_head}</tr>{nlg_rows}</table>
<h2>What was trained how</h2><ul>{training}</ul>
<h2>Examples</h2><table><tr><th>sample</th><th>reference</th><th>full model</th><th>shuffled images</th></tr>{ex}</table>
</body></html>"""
    path = Path(out) / "report.html"
    write_text(path, page)
    return path
