"""Where the judge runs: any OpenAI-compatible chat endpoint (e.g. a vLLM server inside the hospital) or a local
Hugging Face causal LM loaded from a folder. Both answer ``chat(messages, temperature, max_tokens) -> str`` and
raise ``JudgeCallError`` for a failed call; neither retries (``judge.judge_once`` does, boundedly).

The endpoint gets the texts being judged (de-identified records) and nothing that names a patient; the URL is
the endpoint's, never a patient's. The HF backend decodes greedily at temperature 0 and otherwise samples with
the torch generator seeded by the backend's seed plus the call's ``seed`` (repeat k of an item uses seed k). Example: ``OpenAIBackend("http://127.0.0.1:8000/v1", "judge-13b").chat(msgs, 0.0, 512)``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..common.errors import P2MedError
from ..common.optional import require
from .config import JudgeConfig
from .judge import JudgeCallError


class OpenAIBackend:
    """POST {url}/chat/completions with temperature and max_tokens; the first choice's message is the answer."""

    def __init__(self, url: str, model: str, timeout_s: float = 120.0, api_key: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._httpx = require("httpx", "eval")
        self._client = self._httpx.Client(timeout=timeout_s, headers=self._headers)

    def chat(self, messages: list[dict], temperature: float, max_tokens: int, seed: int | None = None) -> str:
        body = {"model": self.model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens}
        if seed is not None:
            body["seed"] = seed  # honoured by vLLM and the OpenAI API
        try:
            resp = self._client.post(f"{self.url}/chat/completions", json=body)
        except self._httpx.TimeoutException as exc:
            raise JudgeCallError(f"timeout after {self.timeout_s:g} s") from exc
        except self._httpx.HTTPError as exc:
            raise JudgeCallError(f"{type(exc).__name__}") from exc
        if resp.status_code != 200:
            raise JudgeCallError(f"HTTP {resp.status_code}")
        try:
            content = resp.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise JudgeCallError("the response is not a chat completion") from exc
        if not isinstance(content, str):
            raise JudgeCallError("the response's message content is not text")
        return content

    def describe(self) -> dict:
        return {"backend": "openai", "model": self.model, "url": self.url}


class HFBackend:
    """A causal LM from a local folder (``local_files_only``); chat template when the tokenizer has one."""

    def __init__(self, path: str | Path, seed: int = 0) -> None:
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise P2MedError(f"judge.path {self.path}: no config.json; put a Hugging Face causal LM folder "
                             "(config.json, weights, tokenizer) there")
        self.torch = require("torch", "train")
        transformers = require("transformers", "train")
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True,
                                                                       dtype=self.torch.float32)
        self.model.eval()
        self.seed = seed
        cfg = (self.path / "config.json").read_bytes()
        self._desc = {"backend": "hf", "model": self.path.name, "config_sha256": hashlib.sha256(cfg).hexdigest(),
                      "model_type": json.loads(cfg).get("model_type")}

    def _prompt(self, messages: list[dict]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        text = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        for m in messages:
            if m["role"] != "system":
                text += f"\n\n{'Human' if m['role'] == 'user' else 'Assistant'}: {m['content']}"
        return text + "\n\nAssistant: "

    def chat(self, messages: list[dict], temperature: float, max_tokens: int, seed: int | None = None) -> str:
        torch = self.torch
        enc = self.tokenizer(self._prompt(messages), return_tensors="pt")
        pad = self.tokenizer.pad_token_id
        kwargs = {"max_new_tokens": max_tokens, "do_sample": temperature > 0,
                  "pad_token_id": pad if pad is not None else self.tokenizer.eos_token_id}
        if temperature > 0:
            torch.manual_seed(self.seed + (seed or 0))
            kwargs["temperature"] = temperature
        try:
            with torch.no_grad():
                out = self.model.generate(**enc, **kwargs)  # [1, T_prompt + T_new]
        except RuntimeError as exc:
            raise JudgeCallError(f"generation failed: {type(exc).__name__}") from exc
        return self.tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    def describe(self) -> dict:
        return dict(self._desc)


def make_backend(cfg: JudgeConfig, seed: int = 0) -> OpenAIBackend | HFBackend | None:
    """The configured backend, or None when the judge is off (``backend: none``)."""
    if cfg.backend == "openai":
        return OpenAIBackend(cfg.url, cfg.model, cfg.timeout_s, os.environ.get(cfg.api_key_env) or None)
    if cfg.backend == "hf":
        return HFBackend(cfg.path, seed)
    return None
