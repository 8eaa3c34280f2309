"""``train(cfg, stage="all", resume=False) -> Path``: the stages in order, each from the previous one's folder.

Output layout (``cfg.out``)::

    tokenizer/                      the tiny preset's BPE, trained on the training stages' text (rank 0)
    features/<identity>/            the frozen-encoder feature cache (unless feature_cache.dir says otherwise)
    stage1/checkpoints/step-N/      every checkpoint_every steps: model + trainer_state.pt + lineage.json
    stage1/final/                   the stage's result: model + lineage.json; stage 2 starts from it
    stage1/metrics.jsonl, stage1/tb/
    stage2/ ... stage3/ ...

Stage 1 builds the model from its preset (``cfg.model`` + ``model_overrides``) seeded by ``cfg.seed``; a later
stage loads the previous stage's ``final`` and applies its own trainable set (LoRA is attached the first time
a stage asks for it). ``resume`` skips stages whose ``final`` exists and continues a stage from its last
complete checkpoint; without it an existing stage folder is an error. Works the same under torchrun.

Example::

    cfg = load_config(TrainConfig, "configs/train/tiny.yaml", ["dataset=runs/ds", "out=runs/train"])
    last = train(cfg)                         # runs/train/stage3/final
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from ..common.errors import P2MedError
from ..config import load_config, to_dict
from ..model.checkpoint import load_checkpoint
from ..model.config import ModelConfig, preset_path
from .checkpoint import LINEAGE, code_version, folder_digest, last_complete, load_state
from .config import StageConfig, TrainConfig
from .data import load_stage, manifest_sha256, resolve_cache, stage_folders, stage_texts
from .distributed import Dist, setup, teardown, unwrap
from .features import FeatureCache
from .loop import StageTrainer

log = logging.getLogger(__name__)


def model_config(cfg: TrainConfig) -> ModelConfig:
    path = Path(cfg.model) if cfg.model.endswith((".yaml", ".yml")) else preset_path(cfg.model)
    return load_config(ModelConfig, path, list(cfg.model_overrides))


def select_stages(cfg: TrainConfig, stage: str | int) -> list[int]:
    """Indices of the stages to run: all, or one given by number (1-based) or name."""
    if str(stage) == "all":
        return list(range(len(cfg.stages)))
    names = [s.name for s in cfg.stages]
    if str(stage) in names:
        return [names.index(str(stage))]
    if str(stage).isdigit() and 1 <= int(stage) <= len(cfg.stages):
        return [int(stage) - 1]
    raise P2MedError(f"--stage {stage}: the config has stages 1..{len(cfg.stages)} ({names}) or 'all'")


def _tokenizer(cfg: TrainConfig, mcfg: ModelConfig, dataset: Path, out: Path, dist: Dist) -> Any:
    """None when the model names its tokenizer; else the BPE trained once (rank 0) on the training text."""
    if mcfg.tokenizer.path or mcfg.llm.path:
        return None
    from ..model.tokenizer import load_tokenizer, train_tokenizer

    folder = out / "tokenizer"
    if dist.main and not (folder / "tokenizer.json").is_file():
        folders = dict.fromkeys(f for s in cfg.stages for f in stage_folders(s.data))   # each folder once
        texts = (t for f in folders for t in stage_texts(dataset, f))
        tok = train_tokenizer(texts, mcfg.tokenizer.vocab_size, mcfg.tokenizer.min_frequency)
        tok.save_pretrained(str(folder))
    dist.barrier()
    return load_tokenizer(folder, "tokenizer")


def _start_model(cfg: TrainConfig, k: int, out: Path, dataset: Path, dist: Dist, resume_from: Path | None):
    stage = cfg.stages[k]
    if resume_from is not None:
        model, processor, _ = load_checkpoint(resume_from)
    elif k > 0:
        prev = out / cfg.stages[k - 1].name / "final"
        if not (prev / LINEAGE).is_file():
            raise P2MedError(f"{stage.name} starts from {prev}, which does not exist: run stage {k} first "
                             f"(--stage {k}) or --stage all")
        model, processor, _ = load_checkpoint(prev)
    else:
        mcfg = model_config(cfg)
        tokenizer = _tokenizer(cfg, mcfg, dataset, out, dist)
        torch.manual_seed(cfg.seed)
        from ..model.build import build_parts

        model, processor, _ = build_parts(mcfg, tokenizer)
    torch.manual_seed(cfg.seed)  # a fresh LoRA adapter starts the same on every rank
    model.set_trainable(stage.trainable)
    return model.to(dist.device), processor


def _previous(cfg: TrainConfig, k: int, out: Path) -> dict[str, Any] | None:
    if k == 0:
        return None
    rel = f"{cfg.stages[k - 1].name}/final"
    return {"path": rel, "sha256": folder_digest(out / rel)}


def run_stage(cfg: TrainConfig, k: int, dist: Dist, resume: bool) -> Path:
    stage: StageConfig = cfg.stages[k]
    out, dataset = Path(cfg.out), Path(cfg.dataset)
    stage_dir = out / stage.name
    final = stage_dir / "final"
    if resume and (final / LINEAGE).is_file():
        log.info("%s: already complete (%s); skipped", stage.name, final)
        return final
    if not resume and stage_dir.exists() and any(stage_dir.iterdir()):
        raise P2MedError(f"{stage_dir} already holds a run: pass --resume to continue it, or choose another out")
    ckpt = last_complete(stage_dir / "checkpoints") if resume else None
    model, processor = _start_model(cfg, k, out, dataset, dist, ckpt)
    cache_root = resolve_cache(dataset, cfg.images)
    if stage.objective == "findings":
        return _findings_stage(cfg, k, model, processor, dataset, cache_root, dist)
    data = load_stage(dataset, stage.data, processor)
    if not data.samples:
        raise P2MedError(f"{dataset / stage.data}: the stage has no samples")
    fc = cfg.feature_cache
    features = None
    if stage.trainable.vision == "frozen":
        features = FeatureCache(Path(fc.dir) if fc.dir else out / "features", unwrap(model),
                                processor.image_processor, fc.budget_gb * 1e9, fc.enabled)
        features.admit(r for s in data.samples for r in s.images)
    recorded = {k_: v for k_, v in to_dict(cfg).items() if k_ != "out"}
    lineage = {"code": code_version(), "config": recorded, "dataset_manifest_sha256": manifest_sha256(dataset),
               "stage": stage.name, "previous": _previous(cfg, k, out),
               "feature_cache": features.key if features is not None else None}
    trainer = StageTrainer(cfg, stage, model, processor, data, cache_root, features, dist, stage_dir, lineage)
    state = load_state(ckpt) if ckpt is not None else None
    if ckpt is not None and dist.main:
        log.info("%s: resuming from %s (step %d of %d)", stage.name, ckpt.name, state["step"], trainer.total_steps)
    steps = trainer.run(state)
    digests = replica_digests(model, dist)
    trainer.save(final, steps, {**lineage, "step": steps, **trainer.summary(), **digests}, with_state=False)
    dist.barrier()
    return final


def _findings_stage(cfg: TrainConfig, k: int, model: Any, processor: Any, dataset: Path, cache_root: Path,
                    dist: Dist) -> Path:
    from .findings import FindingsPretrainer

    stage = cfg.stages[k]
    if dist.world > 1:
        raise P2MedError(f"stages.{stage.name}: objective findings runs in one process (it is short); run it "
                         f"alone first (--stage {k + 1}), then the other stages under torchrun with --resume")
    stage_dir = Path(cfg.out) / stage.name
    stage_dir.mkdir(parents=True, exist_ok=True)
    recorded = {k_: v for k_, v in to_dict(cfg).items() if k_ != "out"}
    lineage = {"code": code_version(), "config": recorded, "dataset_manifest_sha256": manifest_sha256(dataset),
               "stage": stage.name, "previous": _previous(cfg, k, out=Path(cfg.out)), "feature_cache": None}
    return FindingsPretrainer(cfg, stage, model, processor, dataset, cache_root, stage_dir, lineage).run()


def replica_digests(model: Any, dist: Dist) -> dict[str, Any]:
    """sha256 of every rank's replicated trainable parameters (collective): equal digests = replicas in sync
    (under FSDP the sharded layers have one copy and are left out)."""
    import hashlib

    from .distributed import is_sharded

    h = hashlib.sha256()
    for name, p in sorted(unwrap(model).named_parameters()):
        if p.requires_grad and not is_sharded(p):
            h.update(name.encode())
            h.update(p.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return {"replica_sha256": dist.gather_strings(h.hexdigest())}


def train(cfg: TrainConfig, stage: str | int = "all", resume: bool = False) -> Path:
    """Run the selected stages (``"all"``, a 1-based number or a stage name); returns the last stage's final
    checkpoint folder (load it with ``p2med.model.checkpoint.load_checkpoint``)."""
    if not cfg.dataset or not cfg.out:
        raise P2MedError("train: set dataset=DATASET (a `p2med build` folder) and out=FOLDER "
                         "(in the config or as key=value / --dataset / --out)")
    if not Path(cfg.dataset).is_dir():
        raise P2MedError(f"dataset={cfg.dataset}: no such folder")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    indices = select_stages(cfg, stage)
    dist = setup(cfg.distributed.backend)
    try:
        final = None
        for k in indices:
            final = run_stage(cfg, k, dist, resume)
        return final
    finally:
        teardown(dist)
