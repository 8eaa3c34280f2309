"""``p2med model-info --preset paper``: exact parameter counts of a model config, built on the meta device.

Reads a preset (``configs/model/NAME.yaml``) or ``--config FILE`` plus ``key=value`` overrides, counts each part
(the vision tower, the perceiver, the LLM, LoRA) without allocating memory or reading weights, and says where
each part's weights come from. ``--json`` prints the figures as one JSON object instead of the table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="paper", help="configs/model/NAME.yaml (default paper; also tiny, qwen2-7b)")
    p.add_argument("--config", type=Path, help="a model config file (instead of --preset)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. perceiver.depth=4")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from .build import count_parameters
    from .config import ModelConfig, preset_path

    path = args.config or preset_path(args.preset)
    cfg = load_config(ModelConfig, path, list(args.overrides))
    info = count_parameters(cfg)
    if args.json:
        print(json.dumps({"name": cfg.name, **info}, ensure_ascii=False, sort_keys=True))
        return 0
    counts, modes = info["counts"], info["modes"]
    print(f"model {cfg.name} ({path}), dtype {cfg.dtype}")
    print(f"{'part':<14}{'parameters':>16}  {'trains':<8}source")
    for part in ("vision", "perceiver", "llm"):
        source = info["sources"].get(part, "built here")
        print(f"{part:<14}{counts[part]:>16,}  {modes[part]:<8}{source}")
    for part in ("vision", "llm"):
        if f"lora_{part}" in counts:
            print(f"{'lora (' + part + ')':<14}{counts[f'lora_{part}']:>16,}  {'lora':<8}r={cfg.lora.r}, "
                  f"alpha={cfg.lora.alpha} on {', '.join(cfg.lora.targets if part == 'llm' else cfg.lora.vision_targets)}")
    print(f"{'total':<14}{info['total']:>16,}  ({info['total'] / 1e9:.2f} B)")
    print(f"{'trainable':<14}{info['trainable']:>16,}")
    print(f"{cfg.perceiver.num_latents} visual tokens per <image>; {info['num_patches']} patches per slice; "
          f"at most {cfg.perceiver.max_slices} slices; vocabulary {info['vocab_size']:,}")
    return 0
