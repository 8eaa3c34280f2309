"""From per-item scores to the reported figures: mean and t-interval per task, component and metric; counts of
missing sections and failed judgings; breakdowns by age band, sex, modality, vendor and visit kind; the
critical-finding miss rate.

Every figure says how many items it rests on (``n``); a metric an item does not have (no finding metric for an
outpatient diagnosis, no judge when none ran) is absent, never zero. Example of one cell:
``summary["ct_report"]["impression"]["judge_accuracy"]`` -> ``{"n": 121, "mean": 3.82, "ci_low": ..., ...}``.
"""

from __future__ import annotations

from collections import defaultdict

from .benchmark import FACETS
from .stats import mean_ci


def metric_names(items: list[dict]) -> list[str]:
    """Every metric present, in a stable reading order: judge, clinical, NLG."""
    names = {m for it in items for m in it["metrics"]}
    order = ("judge_", "finding_", "change_", "diagnosis_", "bleu", "rouge", "meteor", "cider")
    return sorted(names, key=lambda m: (next((i for i, p in enumerate(order) if m.startswith(p)), 99), m))


def _cell(values: list, confidence: float) -> dict:
    return mean_ci([v for v in values if v is not None], confidence)


def summarise(items: list[dict], confidence: float = 0.95) -> dict:
    """task -> component -> metric -> mean with CI."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for it in items:
        groups[(it["task"], it["component"])].append(it)
    out: dict = defaultdict(dict)
    for (task, comp), group in sorted(groups.items()):
        out[task][comp] = {m: _cell([it["metrics"].get(m) for it in group], confidence) for m in metric_names(group)}
    return dict(out)


def counts(items: list[dict]) -> dict:
    """task -> component -> items, missing sections, judged ok / failed per judge metric."""
    out: dict = defaultdict(dict)
    for it in items:
        c = out[it["task"]].setdefault(it["component"], {"items": 0, "missing_section": 0, "judge": {}})
        c["items"] += 1
        c["missing_section"] += it["missing"]
        for metric, status in it["judge"].items():
            js = c["judge"].setdefault(metric, {"ok": 0, "failed": 0, "missing_section": 0})
            js[status] += 1
    return dict(out)


def critical_rate(critical: dict[str, dict], sample_ids: set[str] | None = None) -> dict:
    rows = [v for k, v in critical.items() if sample_ids is None or k in sample_ids]
    total, missed = sum(r["total"] for r in rows), sum(r["missed"] for r in rows)
    return {"samples": len(rows), "critical_findings": total, "missed": missed,
            "miss_rate": round(missed / total, 6) if total else None}


def breakdown(items: list[dict], critical: dict[str, dict], confidence: float = 0.95) -> dict:
    """facet -> group -> {samples, metrics (over all components), by_component (task/component/metric),
    critical}."""
    out: dict = {}
    for facet in FACETS:
        groups: dict[str, list[dict]] = defaultdict(list)
        for it in items:
            groups[it["facets"][facet]].append(it)
        out[facet] = {}
        for value, group in sorted(groups.items()):
            sids = {it["sample_id"] for it in group}
            out[facet][value] = {"samples": len(sids),
                                 "metrics": {m: _cell([it["metrics"].get(m) for it in group], confidence)
                                             for m in metric_names(group)},
                                 "by_component": summarise(group, confidence),
                                 "critical": critical_rate(critical, sids)}
    return out
