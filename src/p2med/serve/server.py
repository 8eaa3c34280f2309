"""Build and run the server: load a checkpoint folder (in the engine's own thread), merge its LoRA, start the
engine, open the store.

``build_state(cfg, "runs/ckpt")`` -> a ``ServerState`` for ``app.create_app``; ``run(cfg, "runs/ckpt")`` serves it
with uvicorn on ``cfg.host:cfg.port`` (127.0.0.1 by default). On SIGTERM / Ctrl-C uvicorn stops accepting,
in-flight requests get ``shutdown_grace_s`` to finish, then the engine fails what is left (503) and stops.
The model's audit names are ``NAME@<sha256 of config.json>`` (``+int8`` when served with ``quantize=int8``)
and the adapter's file hash (or ``none``).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from ..common.errors import P2MedError
from .config import ServeConfig

log = logging.getLogger(__name__)


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


def model_info(folder: Path) -> dict[str, str]:
    adapters = sorted(folder.glob("adapter_*/*.safetensors"))
    return {"id": folder.resolve().name, "version": f"{folder.resolve().name}@{_digest([folder / 'config.json'])}",
            "adapter": _digest(adapters) if adapters else "none"}


def load_model(folder: str | Path, threads: int = 0, quantize: str = "none"):
    """(model, processor, decoder) ready to serve: LoRA merged into the weights, eval mode, fp32 on CPU, and the
    fast decoder (int8 weights with ``quantize="int8"``; None when the LLM's architecture has none). Call it in
    the thread that will decode (``Engine.loading``)."""
    import torch

    from ..model.checkpoint import load_checkpoint
    from .fast_decode import decoder_for

    if threads:
        torch.set_num_threads(threads)
    model, processor, _tok = load_checkpoint(folder)
    model.merge_lora()
    model.eval()
    try:
        decoder = decoder_for(model, quantize)
    except RuntimeError as exc:                      # no fbgemm engine (not an x86 CPU)
        raise P2MedError(f"quantize={quantize}: {exc}") from exc
    if decoder is None and quantize != "none":
        raise P2MedError(f"quantize={quantize}: the fast decoder does not support this LLM "
                         f"({type(model.llm.model).__name__}); serve it with quantize=none")
    return model, processor, decoder


def build_state(cfg: ServeConfig, folder: str | Path, pacs_password: str | None = None):
    from .app import ServerState
    from .engine import Engine
    from .store import Store

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise P2MedError(f"--model {folder}: not a checkpoint folder (no config.json; write one with save_checkpoint "
                         "or p2med train)")
    engine = Engine.loading(lambda: load_model(folder, cfg.threads, cfg.quantize), max_batch=cfg.max_batch,
                            max_queue=cfg.max_queue, batch_wait_s=cfg.batch_wait_ms / 1000, threads=cfg.threads)
    info = model_info(folder)
    if cfg.quantize != "none":
        info["version"] += f"+{cfg.quantize}"
    pacs = None
    if cfg.pacs_url:
        from .pacs import Pacs

        if pacs_password is None and cfg.pacs_password_file:
            try:
                pacs_password = Path(cfg.pacs_password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise P2MedError(f"pacs_password_file {cfg.pacs_password_file}: cannot read ({exc.strerror})") from exc
        pacs = Pacs(cfg.pacs_url, cfg.pacs_user, pacs_password or "")
    store = Store(cfg.db)
    engine.start()                                   # loads the model in the engine's own thread
    return ServerState(cfg=cfg, store=store, engine=engine, model=info, pacs=pacs)


def run(cfg: ServeConfig, folder: str | Path) -> None:
    import uvicorn

    from .app import create_app

    state = build_state(cfg, folder)
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding %s: the server is reachable from the network, not only from this machine", cfg.host)
    log.info("serving %s on http://%s:%d (store: %s)", state.model["version"], cfg.host, cfg.port,
             state.store.describe())
    uvicorn.run(create_app(state), host=cfg.host, port=cfg.port, log_level="info",
                timeout_graceful_shutdown=max(1, int(cfg.shutdown_grace_s)))
