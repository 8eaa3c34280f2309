"""Training logs without PHI: a metrics JSONL, TensorBoard scalars and a tqdm bar, all on rank 0 only.

One JSON line per optimizer step in ``OUT/<stage>/metrics.jsonl``: ``{"stage", "step", "epoch", "kind"
(image|text), "loss", "loss_by_task", "tokens", "samples", "lr": {part: lr}, "samples_per_s"}``. Only
numbers and task names: no sample ids, texts or patient fields. On resume the lines after the resumed step
(written by the killed run after its last checkpoint) are dropped, so the file reads as one uninterrupted run.

Example::

    log = MetricsLog(out / "stage1", enabled=dist.main, tensorboard=True, progress=True, total=200, start=40)
    log.step({"step": 41, "loss": 2.31, ...})
    log.close()
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..common.atomic import write_text

METRICS = "metrics.jsonl"


def read_metrics(stage_dir: Path) -> list[dict[str, Any]]:
    path = Path(stage_dir) / METRICS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class MetricsLog:
    def __init__(self, stage_dir: Path, enabled: bool, tensorboard: bool, progress: bool, total: int, start: int,
                 label: str):
        self.enabled = enabled
        self.fh = self.tb = self.bar = None
        if not enabled:
            return
        stage_dir.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_metrics(stage_dir) if r["step"] <= start]
        write_text(stage_dir / METRICS, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
        self.fh = open(stage_dir / METRICS, "a", encoding="utf-8")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(stage_dir / "tb"), purge_step=start + 1)
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, desc=label, unit="step", dynamic_ncols=True)

    def step(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.fh.flush()
        if self.tb is not None:
            s = row["step"]
            self.tb.add_scalar("loss/all", row["loss"], s)
            for task, value in row["loss_by_task"].items():
                self.tb.add_scalar(f"loss/{task}", value, s)
            for part, lr in row["lr"].items():
                self.tb.add_scalar(f"lr/{part}", lr, s)
            self.tb.add_scalar("samples_per_s", row["samples_per_s"], s)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{row['loss']:.4f}")

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
        if self.tb is not None:
            self.tb.close()
        if self.bar is not None:
            self.bar.close()
