"""Checkpoint folders and the local-path route: tiny HF parts saved to disk load through vision.path/llm.path,
a missing folder says which weights go where, a checkpoint round-trips, and the paper preset counts ~8B."""

from __future__ import annotations

import json
import re

import pytest
import torch
from model_helpers import (LLM, VISION, conversation, mini_config, mini_model, mini_tokenizer,  # noqa: F401
                           one_thread, randomize_lora)

from p2med.cli import main
from p2med.common.errors import P2MedError
from p2med.config import load_config
from p2med.model.build import build_model, count_parameters
from p2med.model.checkpoint import load_checkpoint, save_checkpoint
from p2med.model.config import ModelConfig, preset_path

pytestmark = pytest.mark.usefixtures("one_thread")


def _logits(model, processor, conv):
    batch = processor.collate([processor.encode(conv["turns"], conv["images"], conv["lang"])])
    with torch.no_grad():
        return model(**batch).logits


def test_hf_folders_load_through_the_local_path_route(tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    tower = CLIPVisionModel(CLIPVisionConfig(**VISION))
    tower.save_pretrained(tmp_path / "clip")
    tok = mini_tokenizer()
    llm_cfg = {k: v for k, v in LLM.items() if k != "model_type"}
    lm = AutoModelForCausalLM.from_config(AutoConfig.for_model("llama", vocab_size=len(tok), **llm_cfg))
    lm.save_pretrained(tmp_path / "llama")
    tok.save_pretrained(tmp_path / "llama")

    cfg = mini_config()
    cfg.vision.path, cfg.vision.hf_config = str(tmp_path / "clip"), {}
    cfg.llm.path, cfg.llm.hf_config = str(tmp_path / "llama"), {}
    model, processor, loaded_tok = build_model(cfg)       # tokenizer from the LLM's folder
    assert len(loaded_tok) == len(tok)
    for name, p in tower.state_dict().items():
        assert torch.equal(model.vision.tower.state_dict()[name], p), name
    base = model.llm.model.get_base_model().state_dict()
    for name, p in lm.state_dict().items():
        assert torch.equal(base.get(name, base.get(name.replace(".weight", ".base_layer.weight"))), p), name
    assert model.stored_parts == set()                    # nothing to store: both come from paths
    count = count_parameters(cfg)                         # counted from the folders' config.json
    assert count["counts"]["vision"] == sum(p.numel() for p in tower.parameters())
    assert count["counts"]["llm"] == sum(p.numel() for p in lm.parameters())


def test_missing_weights_folder_says_which_weights_go_where(tmp_path):
    cfg = load_config(ModelConfig, preset_path("paper"), [f"vision.path={tmp_path / 'nowhere'}"])
    with pytest.raises(P2MedError) as exc:
        build_model(cfg, tokenizer=mini_tokenizer())
    assert "vision.path" in str(exc.value) and "CLIP ViT-L/14-336" in str(exc.value)
    assert "Hugging Face format" in str(exc.value)
    (tmp_path / "empty").mkdir()
    cfg = load_config(ModelConfig, preset_path("paper"), [f"llm.path={tmp_path / 'empty'}"])
    with pytest.raises(P2MedError, match="llm.path=.*no config.json.*Chinese-LLaMA-2-7B"):
        build_model(cfg)


def test_checkpoint_round_trip_with_stored_parts_and_adapter(tmp_path):
    model, processor, _ = mini_model(seed=2)
    randomize_lora(model)
    with torch.no_grad():
        model.perceiver.latents.add_(1.0)
    conv = conversation(n_images=2, slices=(1, 3))
    before = _logits(model, processor, conv)
    out = save_checkpoint(model, processor, tmp_path / "ckpt")
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"config.json", "perceiver.safetensors", "adapter_llm/adapter_config.json",
            "adapter_llm/adapter_model.safetensors", "vision/config.json", "llm/config.json"} <= files
    assert any(f.startswith("tokenizer/") for f in files)
    meta = json.loads((out / "config.json").read_text())
    assert meta["stored"] == {"llm": "llm", "vision": "vision"} and meta["adapters"] == {"llm": "adapter_llm"}
    assert any("random weights" in n for n in meta["notes"])
    for f in files:                                       # no absolute paths inside the checkpoint
        if f.endswith((".json", ".md")):
            assert str(tmp_path) not in (out / f).read_text(encoding="utf-8"), f
    # the LLM's base weights are stored without the adapter's (which lives apart)
    from safetensors import safe_open

    with safe_open(str(out / "llm" / "model.safetensors"), "pt") as fh:
        assert not any("lora" in k or "base_layer" in k for k in fh.keys())

    loaded, processor2, _ = load_checkpoint(out)
    assert torch.allclose(_logits(loaded, processor2, conv), before, atol=1e-5)
    save_checkpoint(loaded, processor2, tmp_path / "again")
    assert (tmp_path / "again" / "config.json").read_text() == (out / "config.json").read_text()


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(P2MedError, match="format"):
        load_checkpoint(tmp_path)


def test_paper_preset_counts_about_8b_parameters_on_meta(capsys):
    info = count_parameters(load_config(ModelConfig, preset_path("paper")))
    assert 7.8e9 <= info["total"] <= 8.3e9
    assert info["vocab_size"] == 55296 and info["num_patches"] == 576
    assert main(["model-info", "--preset", "paper"]) == 0
    out = capsys.readouterr().out
    total = int(re.search(r"^total\s+([\d,]+)", out, re.M).group(1).replace(",", ""))
    assert total == info["total"]
    assert main(["model-info", "--preset", "no-such-preset"]) == 2
