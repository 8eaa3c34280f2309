"""Plots for the report as inline SVG (matplotlib Agg): means with their CI bars per task and component.

The SVG carries no date and fixed element ids (``svg.hashsalt``), so the same results give the same bytes.
Labels are English (the plot fonts need no CJK glyphs); text stays text in the SVG.
Example: ``ci_bars([("CT / Impression", {"mean": 3.8, "ci_low": 3.5, "ci_high": 4.1, "n": 121})], "judge accuracy",
(1, 5))`` -> ``"<svg ...>"``.
"""

from __future__ import annotations

import io
import re

from ..common.optional import require


def ci_bars(cells: list[tuple[str, dict]], title: str, xlim: tuple[float, float]) -> str:
    """Horizontal bars (mean) with error bars (CI) per labelled cell; cells without a mean are skipped."""
    matplotlib = require("matplotlib", "eval")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [(label, c) for label, c in cells if c.get("mean") is not None]
    if not cells:
        return ""
    with plt.rc_context({"svg.hashsalt": "p2med", "svg.fonttype": "none", "font.size": 9}):
        height = 0.3 * len(cells) + 0.9
        fig, ax = plt.subplots(figsize=(8.0, height))
        fig.subplots_adjust(left=0.42, right=0.97, top=1 - 0.45 / height, bottom=0.35 / height)  # no tight_layout:
        # it measures every label twice and made a figure cost a second
        ys = list(range(len(cells)))[::-1]
        means = [c["mean"] for _, c in cells]
        lo = [c["mean"] - c["ci_low"] if c.get("ci_low") is not None else 0 for _, c in cells]
        hi = [c["ci_high"] - c["mean"] if c.get("ci_high") is not None else 0 for _, c in cells]
        ax.barh(ys, means, xerr=[lo, hi], color="#5b8db8", ecolor="#222", capsize=3, height=0.6)
        ax.set_yticks(ys, [f"{label} (n={c['n']})" for label, c in cells])
        ax.set_xlim(*xlim)
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
        plt.close(fig)
    svg = buf.getvalue()
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg[svg.index("<svg"):], flags=re.S)  # RDF boilerplate
    return svg
