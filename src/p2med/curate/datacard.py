"""The data card of a built dataset: ``data_card.md`` and the figures in ``data_card/``.

What is in each stage per task and category (the paper's Fig. 7), the benchmark, age and sex, modalities
and views, the thresholds actually used (with the scale factor), what was excluded and why, what the
category normaliser could not map. Knows nothing about how the stages were sampled.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..common.atomic import write_text
from ..common.plots import pyplot

TASK_ORDER = ("xray_report", "ct_report", "outpatient", "first_course", "attending_round", "chief_round")


def _bars(plt, ax, counter: dict, title: str, top: int = 15) -> None:
    items = list(counter.items())[:top][::-1]
    ax.barh([k for k, _ in items], [v for _, v in items], color="#4a7ab0")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)


def _category_figure(path: Path, name: str, stage_counts: dict) -> None:
    plt = pyplot()
    tasks = [t for t in TASK_ORDER if stage_counts.get(t)]
    if not tasks:
        return
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        _bars(plt, ax, stage_counts[task], f"{name} · {task} ({sum(stage_counts[task].values())})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _demographics_figure(path: Path, samples: list[dict]) -> None:
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    drawn = 0
    for sex, color in (("M", "#4a7ab0"), ("F", "#c0504d"), ("U", "#999999")):
        ages = [s["meta"]["age_days"] / 365.25 for s in samples if (s["meta"].get("sex") or "U") == sex
                and s["meta"].get("age_days") is not None]
        if ages:
            a1.hist(ages, bins=range(0, 19), alpha=0.6, label=f"{sex} ({len(ages)})", color=color)
            drawn += 1
    a1.set_xlabel("age at exam / record (years)")
    if drawn:
        a1.legend(fontsize=8)
    else:
        a1.text(0.5, 0.5, "no birth date or sex in the export", ha="center", va="center", transform=a1.transAxes)
    roles = Counter((s["task"], s["images"][i]["role"]) for s in samples for t in s["turns"] for i in t["images"])
    labels = [f"{t}:{r}" for (t, r) in sorted(roles)]
    a2.bar(labels, [roles[k] for k in sorted(roles)], color="#4a7ab0")
    a2.set_title("images by task and view / series", fontsize=9)
    a2.tick_params(axis="x", labelrotation=30, labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _table(counter: dict, top: int = 20) -> str:
    rows = list(counter.items())
    lines = ["| category | samples |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows[:top]]
    if len(rows) > top:
        lines.append(f"| ... {len(rows) - top} more | {sum(v for _, v in rows[top:])} |")
    return "\n".join(lines)


def write_data_card(out: Path, card: dict, stage_units: dict, samples: dict, bench_samples: list[dict]) -> None:
    figs = out / "data_card"
    figs.mkdir(parents=True, exist_ok=True)
    md = ["# Data card", "",
          "Built by `p2med build` (SPEC sections 2-4, 7). Counts are samples (conversations); a multi-label "
          "sample counts under its first (primary) category.", "", "## Stages", "",
          "| task | before sampling | stage 1 | stage 2 | stage 3 | benchmark |", "|---|---|---|---|---|---|"]
    for task in TASK_ORDER:
        row = [sum(card["before"].get(task, {}).values())]
        row += [sum(card["stages"][s].get(task, {}).values()) for s in ("stage1", "stage2", "stage3")]
        row.append(sum(card["benchmark"].get(task, {}).values()))
        md.append(f"| {task} | " + " | ".join(str(x) for x in row) + " |")
    md += ["", f"## Thresholds (scale factor {card['scale']})", "",
           "Every count threshold of SPEC section 3 times the scale factor (rounded up):", "",
           "| threshold | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in card["thresholds"].items()]
    for name in ("stage1", "stage2", "stage3"):
        _category_figure(figs / f"{name}_categories.png", name, card["stages"][name])
        md += ["", f"## {name}: categories per task", "", f"![{name}](data_card/{name}_categories.png)", ""]
        for task, c in card["stages"][name].items():
            md += [f"**{task}**", "", _table(c), ""]
    _category_figure(figs / "benchmark_categories.png", "benchmark", card["benchmark"])
    md += ["## Benchmark", "", "![benchmark](data_card/benchmark_categories.png)", ""]
    for task, c in card["benchmark"].items():
        md += [f"**{task}** ({sum(c.values())} samples, {len(c)} categories)", "", _table(c), ""]
    every = list(samples.values()) + bench_samples
    _demographics_figure(figs / "demographics.png", every)
    md += ["## Age, sex, modalities and views", "", "![demographics](data_card/demographics.png)", "",
           "## Exclusions (ledger)", "", "| status | count |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in card["ledger"].items()]
    md += ["", "| reason | count |", "|---|---|"] + [f"| {k} | {v} |" for k, v in card["reasons"].items()]
    d = card["dedup"]
    md += ["", "## Near-deduplication", "", f"{d['clusters']} clusters, {d['removed']} outpatient records removed, "
           f"{d['too_short']} too short to deduplicate.", "", "## Category normaliser: not mapped", ""]
    md += ([f"- {k}: {v}" for k, v in card["unmapped"].items()] or ["- nothing"])
    if card["warnings"]:
        md += ["", "## Warnings", ""] + [f"- {w}" for w in card["warnings"]]
    write_text(out / "data_card.md", "\n".join(md) + "\n")
