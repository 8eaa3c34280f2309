"""``p2med ablate --config ABLATION.yaml --out DIR``: tables shaped like the paper's Tables I-IV from model
variants (without stage 1/2/3, without images, without MRC, single-task, another backbone, text-only baselines).

A variant is an existing evaluation run (``run``) or a model to evaluate now (``model``, into ``DIR/runs/<name>``
with ``--bench``; resumable). A table lists tasks, components and metrics as columns and the variants that
appear in it as rows; a cell is mean ± CI half-width (n). A task a text-only model cannot do reads "n/a"; a
judge figure without a judge reads "not run". Shipped example: ``configs/eval/ablation_paper.yaml``.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..common.errors import P2MedError
from ..config import check
from ..export.schema import TASKS
from .benchmark import KEY_COMPONENTS
from .report import CSS, label


@dataclass
class TableSpec:
    id: str = ""                 # "I", "II", ...: variants name the tables they appear in
    title: str = ""              # caption
    tasks: list[str] = field(default_factory=list)       # column groups, in order
    components: list[str] = field(default_factory=list)  # only these sections ([] = every section of the tasks)
    key_only: bool = False       # only the six key components
    metrics: list[str] = field(default_factory=lambda: ["judge_accuracy", "judge_comprehensiveness"])  # per component

    def __post_init__(self) -> None:
        check(bool(self.id), "tables[].id", "must not be empty")
        bad = [t for t in self.tasks if t not in TASKS]
        check(not bad and bool(self.tasks), f"tables[{self.id}].tasks", f"must be tasks of {sorted(TASKS)}, got {bad}")
        check(bool(self.metrics), f"tables[{self.id}].metrics", "must not be empty")


@dataclass
class Variant:
    name: str = ""               # row label, e.g. "P2Med w/o stage 1"
    run: str = ""                # an evaluation run folder (p2med eval --out)
    model: str = ""              # or a model folder to evaluate now (needs --bench)
    model_kind: str = "auto"     # auto | p2med | causal-lm
    tables: list[str] = field(default_factory=list)  # ids of the tables this row appears in

    def __post_init__(self) -> None:
        check(bool(self.name), "variants[].name", "must not be empty")
        check(bool(self.run) != bool(self.model), f"variants[{self.name}]", "give exactly one of run or model")
        check(self.model_kind in ("auto", "p2med", "causal-lm"), f"variants[{self.name}].model_kind",
              "must be auto, p2med or causal-lm")


@dataclass
class AblationConfig:
    tables: list[TableSpec] = field(default_factory=list)  # the tables to produce
    variants: list[Variant] = field(default_factory=list)  # the rows

    def __post_init__(self) -> None:
        ids = [t.id for t in self.tables]
        check(len(ids) == len(set(ids)), "tables", f"table ids must be unique, got {ids}")
        for v in self.variants:
            unknown = [t for t in v.tables if t not in ids]
            check(not unknown, f"variants[{v.name}].tables", f"unknown table id(s) {unknown}; tables: {ids}")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "variant"


def _columns(spec: TableSpec, results: list[dict]) -> list[tuple[str, str, str]]:
    cols = []
    for task in spec.tasks:
        comps = spec.components or list(dict.fromkeys(c for r in results for c in r["summary"].get(task, {})))
        if not comps:
            comps = list(TASKS[task].outputs)
        for comp in comps:
            if spec.key_only and (task, comp) not in KEY_COMPONENTS:
                continue
            for metric in spec.metrics:
                if metric == "judge_comprehensiveness" and (task, comp) not in KEY_COMPONENTS:
                    continue
                cols.append((task, comp, metric))
    return cols


def _cell(r: dict, task: str, comp: str, metric: str) -> str:
    if task in r["not_applicable"] and task not in r["summary"]:
        return "n/a"
    if metric.startswith("judge_") and r["judge"]["status"] != "ran":
        return "not run"
    c = r["summary"].get(task, {}).get(comp, {}).get(metric)
    if not c or c.get("mean") is None:
        return "—"
    hw = c.get("half_width")
    return f"{c['mean']:.2f} ± {hw:.2f} ({c['n']})" if hw is not None else f"{c['mean']:.2f} ({c['n']})"


def build_tables(cfg: AblationConfig, results: dict[str, dict]) -> list[dict]:
    """Each table as {id, title, columns, rows: [[variant, cells...]]} from the variants' results."""
    out = []
    for spec in cfg.tables:
        rows_v = [v for v in cfg.variants if spec.id in v.tables]
        cols = _columns(spec, [results[v.name] for v in rows_v])
        rows = [[v.name] + [_cell(results[v.name], *c) for c in cols] for v in rows_v]
        out.append({"id": spec.id, "title": spec.title,
                    "columns": [f"{label(t, c)} {m.replace('judge_', '')}" for t, c, m in cols], "rows": rows})
    return out


def render_markdown(tables: list[dict]) -> str:
    lines = []
    for t in tables:
        lines += [f"## Table {t['id']}: {t['title']}", "", "| Model | " + " | ".join(t["columns"]) + " |",
                  "|---|" + "---|" * len(t["columns"])]
        lines += ["| " + " | ".join(row) + " |" for row in t["rows"]] + [""]
    return "\n".join(lines)


def render_html(tables: list[dict]) -> str:
    import html

    e = html.escape
    parts = ["<!DOCTYPE html>", "<html lang=\"zh\"><head><meta charset=\"utf-8\"><title>P2Med ablations</title>",
             f"<style>{CSS}</style></head><body><h1>P2Med ablations</h1>"]
    for t in tables:
        head = "".join(f"<th>{e(c)}</th>" for c in ["Model"] + t["columns"])
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in t["rows"])
        parts.append(f"<h2>Table {e(t['id'])}: {e(t['title'])}</h2><table><thead><tr>{head}</tr></thead>"
                     f"<tbody>{body}</tbody></table>")
    return "\n".join(parts + ["</body></html>"]) + "\n"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="ablation YAML (e.g. configs/eval/ablation_paper.yaml)")
    p.add_argument("--out", required=True, type=Path, help="folder for the tables (and runs of model variants)")
    p.add_argument("--bench", type=Path, help="DATASET/benchmark, needed for variants given as a model")
    p.add_argument("--images", type=Path, help="ingest cache root (default: from the dataset manifest)")
    p.add_argument("--eval-config", type=Path, help="p2med eval config for model variants")
    p.add_argument("--judge-url", help="OpenAI-compatible judge endpoint for model variants")
    p.add_argument("--judge-model", help="model name the judge endpoint serves")
    p.add_argument("--judge-hf", type=Path, help="local HF judge folder for model variants")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="p2med eval config overrides")


def run(args: argparse.Namespace) -> int:
    from ..common.atomic import write_json, write_text
    from ..common.ledger import Ledger, write_manifest
    from ..config import load_config
    from .cli import build_judge, cache_root, eval_config

    cfg = load_config(AblationConfig, args.config)
    results: dict[str, dict] = {}
    ledger = Ledger()
    for v in cfg.variants:
        if v.run:
            path = Path(v.run) / "results.json"
            if not path.is_file():
                raise P2MedError(f"{args.config}: variant {v.name!r}: {path} does not exist (run p2med eval first, "
                                 "or give the variant a model)")
            results[v.name] = json.loads(path.read_text(encoding="utf-8"))
        else:
            if args.bench is None:
                raise P2MedError(f"{args.config}: variant {v.name!r} is a model; evaluating it needs --bench")
            from .adapters import open_generator
            from .runner import evaluate

            ecfg = eval_config(args.eval_config, args.overrides, args.judge_url, args.judge_model, args.judge_hf)
            gen = open_generator(v.model, v.model_kind, cache_root(args.bench, args.images), ecfg.max_new_tokens)
            results[v.name] = evaluate(gen, args.bench, args.out / "runs" / _slug(v.name), ecfg, build_judge(ecfg))
        ledger.used(v.name, tables=v.tables)
    tables = build_tables(cfg, results)
    write_json(args.out / "tables.json", tables)
    write_text(args.out / "tables.md", render_markdown(tables))
    write_text(args.out / "tables.html", render_html(tables))
    ledger.write(args.out)
    write_manifest(args.out, "ablate", {"config": args.config.name},
                   {"variants": len(cfg.variants), "tables": len(tables)},
                   files=["tables.json", "tables.md", "tables.html", "ledger.jsonl"])
    print(render_markdown(tables), end="")
    return 0
