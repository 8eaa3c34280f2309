"""Generation for every benchmark sample, batched and resumable, behind a small ``Generator`` protocol.

A generator writes the last assistant turn of each sample (earlier turns are the priors, given). Batches are
all image-text or all text (SPEC section 6). Answers are appended to ``generations.jsonl`` batch by batch, so a killed run resumes where it stopped; a run folder that
holds another model's answers is refused. At the end the file is rewritten in benchmark order (deterministic).
Knows nothing about models (``adapters``) or scoring. Example line:
``{"sample_id": "xray_report/V1/2", "output": "【影像所见】...\\n【影像诊断】..."}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from ..common.atomic import write_json, write_jsonl
from ..common.errors import P2MedError

GENERATIONS = "generations.jsonl"
GENERATOR_META = "generator.json"


class Generator(Protocol):
    """What evaluation needs from a model."""

    name: str               # short label for tables (the checkpoint folder's name)
    supports_images: bool   # False: image tasks are "not applicable" (text-only baselines)

    def generate(self, samples: list[dict], max_new_tokens: int | None = None) -> list[str]:
        """One answer per sample: the text of its last assistant turn (greedy, stops at EOS)."""
        ...

    def describe(self) -> dict:
        """Lineage for the model card: kind, name, config hash, training stages... (no absolute paths)."""
        ...


def _read(path: Path) -> dict[str, str]:
    done: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill: regenerate that sample
            done[row["sample_id"]] = row["output"]
    return done


def run_generation(generator: Generator, samples: list[dict], out_dir: Path, batch_size: int,
                   max_new_tokens: int | None = None, progress: bool = True, file: str = GENERATIONS) -> dict[str, str]:
    """sample_id -> answer for every sample; resumes from ``out_dir/file``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path, path = out_dir / GENERATOR_META, out_dir / file
    desc = generator.describe()
    if meta_path.is_file():
        old = json.loads(meta_path.read_text(encoding="utf-8"))
        if old != desc:
            raise P2MedError(f"{out_dir}: holds answers of another model ({old.get('name')}, not {desc.get('name')}); "
                             "use a fresh --out folder")
    else:
        write_json(meta_path, desc)
    done = _read(path)
    pending = [s for s in samples if s["sample_id"] not in done]
    # batches are modality-homogeneous (all image-text or all text, SPEC section 6), as the model requires
    groups = ([s for s in pending if s.get("images")], [s for s in pending if not s.get("images")])
    batches = [g[i:i + batch_size] for g in groups for i in range(0, len(g), batch_size)]
    if pending:
        from tqdm import tqdm

        bar = tqdm(total=len(samples), initial=len(samples) - len(pending), desc=f"generate {file}", unit="sample",
                   disable=not progress)
        with open(path, "a", encoding="utf-8") as fh:
            for batch in batches:
                outputs = generator.generate(batch, max_new_tokens)
                if len(outputs) != len(batch):
                    raise P2MedError(f"generator {desc.get('name')} returned {len(outputs)} answers for "
                                     f"{len(batch)} samples")
                for s, text in zip(batch, outputs):
                    fh.write(json.dumps({"sample_id": s["sample_id"], "output": text}, ensure_ascii=False) + "\n")
                    done[s["sample_id"]] = text
                fh.flush()
                bar.update(len(batch))
        bar.close()
    ordered = [{"sample_id": s["sample_id"], "output": done[s["sample_id"]]} for s in samples]
    write_jsonl(path, ordered)
    return {r["sample_id"]: r["output"] for r in ordered}
