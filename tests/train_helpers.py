"""A small dataset in the documented format (docs/dataset-format.md) with a learnable input -> answer mapping.

``write_dataset(root)`` writes ``root/cache`` (an ingest-cache-like folder: ``arrays/ab/<sha256>.npy``, float16
[S, H, W] in 0..1, a manifest) and ``root/ds`` (``manifest.json`` naming the cache, ``stage{1,2,3}/samples-*.jsonl``).
X-ray samples have one view whose bright band (upper or lower half, left or right) decides the answer; CT
samples have a padded series whose bright slices decide it; text samples (outpatient) name a symptom that
decides the diagnosis. ``shuffle_targets=True`` permutes the answers across samples of a task (the control
whose loss cannot fall below the answers' marginal entropy). ``mini_model_yaml`` writes the tests' mini model
as a model config file for ``TrainConfig.model``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from pathlib import Path

import numpy as np
import yaml
from model_helpers import mini_config

from p2med.config import to_dict

XR_PROMPT = "【检查方式】X线【影像】<image>\n请生成报告：【影像所见】……【影像诊断】……"
CT_PROMPT = "【检查方式】CT【影像】<image>\n请生成报告：【影像所见】……【影像诊断】……"
SIDES = [("右", "上"), ("右", "下"), ("左", "上"), ("左", "下")]
FINDINGS = ["斑片影，考虑支气管肺炎。", "实变影，考虑大叶性肺炎。"]  # by the lesion's brightness
SYMPTOMS = {"咳嗽三天": "急性支气管炎", "发热伴喘息": "毛细支气管炎", "流涕鼻塞": "急性上呼吸道感染",
            "高热寒战": "肺炎", "犬吠样咳嗽": "急性喉炎", "呼吸急促": "重症肺炎"}


def _array(cache: Path, arr: np.ndarray) -> dict:
    buf = io.BytesIO()
    np.save(buf, arr.astype(np.float16))
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    rel = f"arrays/{sha[:2]}/{sha}.npy"
    (cache / rel).parent.mkdir(parents=True, exist_ok=True)
    (cache / rel).write_bytes(data)
    return {"array": rel, "sha256": sha, "shape": list(arr.shape), "dtype": "float16"}


def _xray(rng, k: int, size: int, level: float) -> np.ndarray:
    img = rng.random((1, size, size)) * 0.2
    side, zone = SIDES[k % 4]
    rows = slice(0, size // 2) if zone == "上" else slice(size // 2, size)
    cols = slice(0, size // 2) if side == "右" else slice(size // 2, size)
    img[0, rows, cols] += level
    return img


def _ct(rng, k: int, size: int, slices: int, pad: int, level: float) -> np.ndarray:
    vol = rng.random((slices + pad, size, size)) * 0.2
    vol[slices:] = 0.0
    side, zone = SIDES[k % 4]
    z = slice(0, slices // 2) if zone == "上" else slice(slices // 2, slices)
    cols = slice(0, size // 2) if side == "右" else slice(size // 2, size)
    vol[z, :, cols] += level
    return vol


def image_sample(cache: Path, rng, i: int, modality: str, size: int, ct_slices: int) -> dict:
    k, kind = int(rng.integers(0, 4)), int(rng.integers(0, 2))
    level = (0.4, 0.8)[kind]             # faint: patchy opacity; dense: consolidation
    side, zone = SIDES[k]
    if modality == "XR":
        entry = {**_array(cache, _xray(rng, k, size, level)), "role": "frontal", "true_slices": 1}
        prompt, task = XR_PROMPT, "xray_report"
    else:
        pad = 2 if i % 2 else 0
        entry = {**_array(cache, _ct(rng, k, size, ct_slices, pad, level)), "role": "nc", "true_slices": ct_slices}
        prompt, task = CT_PROMPT, "ct_report"
    answer = f"【影像诊断】{side}肺{zone}野{FINDINGS[kind]}"
    return {"sample_id": f"{task}/{i}", "task": task, "variant": None, "lang": "zh", "modality": modality,
            "categories": ["肺炎"], "output_keys": ["findings", "impression"], "images": [entry],
            "turns": [{"source_id": f"E{i}", "images": [0], "human": prompt, "assistant": answer}], "meta": {}}


def text_sample(rng, i: int) -> dict:
    symptom = list(SYMPTOMS)[int(rng.integers(0, len(SYMPTOMS)))]
    days = int(rng.integers(1, 9))
    human = f"【主诉】{symptom}{days}天【现病史】患儿{symptom}。\n请给出：【初步诊断】……【处理意见】……"
    answer = f"【初步诊断】{SYMPTOMS[symptom]}，{days}天后复诊。"
    return {"sample_id": f"outpatient/{i}", "task": "outpatient", "variant": None, "lang": "zh", "modality": None,
            "categories": [SYMPTOMS[symptom]], "output_keys": ["diagnosis", "advice"], "images": [],
            "turns": [{"source_id": f"R{i}", "images": [], "human": human, "assistant": answer}], "meta": {}}


def write_dataset(root: Path, n_xray: int = 12, n_ct: int = 6, n_text: int = 12, seed: int = 0, size: int = 40,
                  ct_slices: int = 4, shuffle_targets: bool = False, stages: tuple[str, ...] = ("stage1", "stage2",
                  "stage3")) -> Path:
    """Write root/cache and root/ds; returns the dataset folder. Each stage gets its own draw of samples."""
    cache, ds = root / "cache", root / "ds"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "manifest.json").write_text(json.dumps({"command": "test"}), encoding="utf-8")
    for s, stage in enumerate(stages):
        rng = np.random.default_rng(seed * 100 + s)
        rows = ([image_sample(cache, rng, i, "XR", size, ct_slices) for i in range(n_xray)]
                + [image_sample(cache, rng, n_xray + i, "CT", size, ct_slices) for i in range(n_ct)]
                + [text_sample(rng, i) for i in range(n_text)])
        if shuffle_targets:
            _shuffle_answers(rows, seed)
        (ds / stage).mkdir(parents=True, exist_ok=True)
        half = len(rows) // 2
        for n, part in enumerate((rows[:half], rows[half:])):
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part)
            (ds / stage / f"samples-{n:05d}.jsonl").write_text(text, encoding="utf-8")
    (ds / "manifest.json").write_text(json.dumps({"command": "build", "cache": "../cache"}), encoding="utf-8")
    return ds


def _shuffle_answers(rows: list[dict], seed: int) -> None:
    by_task: dict[str, list[dict]] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)
    rnd = random.Random(seed)
    for group in by_task.values():
        answers = [r["turns"][0]["assistant"] for r in group]
        rnd.shuffle(answers)
        for r, a in zip(group, answers):
            r["turns"][0]["assistant"] = a


def mini_model_yaml(path: Path) -> Path:
    """The tests' mini model (model_helpers.mini_config) as a model config file."""
    data = to_dict(mini_config())
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def one_stage(data: str, llm: str, epochs: int, lr: float = 1e-3) -> list[dict]:
    """A one-stage list named "s": the perceiver trains, the LLM as ``llm`` (frozen | lora | full)."""
    rates = {"perceiver": lr, **({} if llm == "frozen" else {"llm": lr})}
    return [{"name": "s", "data": data, "trainable": {"vision": "frozen", "perceiver": "full", "llm": llm},
             "lr": rates, "epochs": epochs}]


def config_file(root: Path, ds: Path, run: str, **over) -> Path:
    """``root/RUN.yaml``: train_config(...) with out=root/RUN, for the CLI in a subprocess."""
    from p2med.config import to_dict

    path = root / f"{run}.yaml"
    path.write_text(yaml.safe_dump(to_dict(train_config(root, ds, root / run, **over)), allow_unicode=True),
                    encoding="utf-8")
    return path


def subprocess_env() -> dict:
    """The environment of a `p2med train` subprocess: this checkout's src, offline, one thread."""
    src = Path(__file__).resolve().parents[1] / "src"
    return {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def train_config(root: Path, ds: Path, out: Path, **over) -> "TrainConfig":  # noqa: F821
    """A TrainConfig on the mini model: perceiver-only stage 1 (paper-literal), then perceiver + LoRA."""
    from p2med.config import from_dict
    from p2med.train.config import TrainConfig

    model = mini_model_yaml(root / "mini.yaml") if not (root / "mini.yaml").is_file() else root / "mini.yaml"
    stages = [
        {"name": "stage1", "data": "stage1", "trainable": {"vision": "frozen", "perceiver": "full", "llm": "frozen"},
         "lr": {"perceiver": 1e-3}, "epochs": 1},
        {"name": "stage2", "data": "stage2", "trainable": {"vision": "frozen", "perceiver": "full", "llm": "lora"},
         "lr": {"perceiver": 1e-3, "llm": 1e-3}, "epochs": 1},
        {"name": "stage3", "data": "stage3", "trainable": {"vision": "frozen", "perceiver": "full", "llm": "lora"},
         "lr": {"perceiver": 1e-3, "llm": 1e-3}, "epochs": 1},
    ]
    data = {"model": str(model), "dataset": str(ds), "out": str(out), "batch_size": 4, "length_group": 4,
            "checkpoint_every": 2, "progress": False, "tensorboard": False, "threads": 1, "stages": stages}
    data.update(over)
    return from_dict(TrainConfig, data)


def heldout_loss(folder: Path, ds: Path, data: str) -> float:
    """Mean loss per assistant token of the checkpoint ``folder`` on the samples of ``ds/data``."""
    import torch

    from p2med.model.checkpoint import load_checkpoint
    from p2med.train.data import load_image, load_stage

    model, processor, _ = load_checkpoint(folder)
    stage = load_stage(ds, data, processor)
    total = count = 0.0
    with torch.no_grad():
        for s in stage.samples:
            sample = {"input_ids": torch.tensor(s.input_ids), "labels": torch.tensor(s.labels),
                      "image_mask": torch.tensor(s.image_mask)}
            if s.images:
                sample["pixel_values"] = [processor.image_processor(load_image(ds / "../cache", r)) for r in s.images]
            out = model(**processor.collate([sample]))
            total += float(out.loss_sum)
            count += int(out.n_tokens)
    return total / count
