"""``POST /v1/chat/completions`` in the OpenAI Chat Completions shape, streamed (SSE) or not.

Messages become the model's turns (system text goes before the first user text; consecutive user messages
join); content parts are ``text`` and ``image_url`` with a ``data:image/...;base64,`` URL only (anything else is
a 400 and nothing is fetched). A picture becomes an ``<image>`` where it stands, through the same ingestion
code as training (``p2med.imaging.ingest.ingest_files``: windowed, 336 x 336). CT volumes go through the study
routes. ``temperature`` absent or 0 decodes greedily; above 0 samples (with ``top_p`` and ``seed``). The answer's
sections are parsed (``p2med.text.sections``) and returned beside the text under ``p2med.sections``.
Example request::

    {"model": "tiny", "stream": true, "max_tokens": 128, "messages": [{"role": "user", "content": [
      {"type": "text", "text": "【影像】"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}]}]}
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..common.errors import P2MedError
from ..export.schema import TASKS
from ..imaging.ingest import ingest_files
from ..model.generate import GenerationConfig
from ..model.processor import ImageItem
from ..text.sections import parse_sections
from .app import current_user, error_response, state_of

router = APIRouter()
OUTPUT_KEYS = list(dict.fromkeys(k for t in TASKS.values() for k in t.outputs))


def data_url_image(url: str, where: str) -> ImageItem:
    """A ``data:image/...;base64,`` URL -> a windowed image item (the ingestion of a PNG/JPEG picture)."""
    if not isinstance(url, str) or not url.startswith("data:"):
        raise P2MedError(f"{where}: only data: URLs are accepted (nothing was fetched)")
    head, _, payload = url.partition(",")
    if not head.startswith("data:image/") or not head.endswith(";base64"):
        raise P2MedError(f"{where}: expected data:image/png;base64,... or data:image/jpeg;base64,...")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise P2MedError(f"{where}: the base64 payload does not decode") from exc
    suffix = ".jpg" if "jpeg" in head or "jpg" in head else ".png"
    with tempfile.TemporaryDirectory(prefix="p2med-image-") as tmp:
        path = Path(tmp) / f"frontal{suffix}"       # named as p2med import names pictures: one 2D view
        path.write_bytes(raw)
        exam = ingest_files([path], modality="XR", names=[path.name])
    if not exam.images:
        reasons = "; ".join(f"{o.code}: {o.text}" for o in exam.files.values() if o.status != "used")
        raise P2MedError(f"{where}: not a usable 2D image ({reasons or 'unreadable'})")
    entry, arr = exam.images[0]
    return ImageItem(arr, int(entry.get("true_slices") or arr.shape[0]))


def _content(content: Any, where: str, images: list[ImageItem]) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise P2MedError(f"{where}: content must be a string or a list of parts")
    text = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text.append(str(part.get("text", "")))
        elif kind == "image_url":
            url = (part.get("image_url") or {}).get("url") if isinstance(part.get("image_url"), dict) else None
            images.append(data_url_image(url, f"{where}[{i}].image_url"))
            text.append("<image>")
        else:
            raise P2MedError(f"{where}[{i}]: part type must be 'text' or 'image_url'")
    return "".join(text)


def conversation(body: dict) -> dict:
    """OpenAI messages -> {"turns", "images", "lang"}; the last message must be the user's."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise P2MedError("messages: a non-empty list is required")
    turns: list[dict] = []
    images: list[ImageItem] = []
    system = []
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        text = _content(m.get("content", ""), f"messages[{i}].content", images) if role else ""
        if role == "system":
            system.append(text)
        elif role == "user":
            if turns and "assistant" not in turns[-1]:
                turns[-1]["human"] += "\n" + text
            else:
                turns.append({"human": "\n".join(system + [text])})
                system = []
        elif role == "assistant":
            if not turns or "assistant" in turns[-1]:
                raise P2MedError(f"messages[{i}]: an assistant message must follow a user message")
            turns[-1]["assistant"] = text
        else:
            raise P2MedError(f"messages[{i}].role: expected system, user or assistant")
    if not turns or "assistant" in turns[-1]:
        raise P2MedError("messages: the last message must be the user's")
    lang = body.get("lang") or ("en" if not any("\u4e00" <= ch <= "\u9fff" for t in turns for ch in t["human"])
                                else "zh")
    return {"turns": turns, "images": images, "lang": lang}


def generation_config(body: dict, cap: int) -> GenerationConfig:
    n = body.get("max_completion_tokens") or body.get("max_tokens") or cap
    if not isinstance(n, int) or n < 1:
        raise P2MedError("max_tokens: must be a positive integer")
    temperature = body.get("temperature") or 0
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise P2MedError("temperature: must be a number >= 0")
    top_p = body.get("top_p") or 1.0
    if not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise P2MedError("top_p: must be in (0, 1]")
    return GenerationConfig(max_new_tokens=min(n, cap), do_sample=temperature > 0,
                            temperature=float(temperature or 1.0), top_p=float(top_p), seed=int(body.get("seed") or 0))


def sse(obj: Any) -> str:
    return "data: " + (obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)) + "\n\n"


@router.post("/v1/chat/completions")
def chat_completions(body: dict, request: Request, user: dict = Depends(current_user)) -> Any:
    state = state_of(request)
    t0 = time.monotonic()

    def audit(outcome: str) -> None:
        state.store.audit(user["id"], "chat", outcome, model=state.model["version"], adapter=state.model["adapter"],
                          latency_ms=(time.monotonic() - t0) * 1000)
    try:
        conv = conversation(body)
        cfg = generation_config(body, state.cfg.max_new_tokens)
        job = state.engine.submit(conv, cfg)
    except Exception as exc:  # noqa: BLE001 - every failure is audited and answered in its shape
        audit(f"error: {type(exc).__name__}")
        return error_response(exc)
    cid, created = "chatcmpl-" + secrets.token_hex(12), int(time.time())
    base = {"id": cid, "created": created, "model": state.model["id"]}
    pieces = state.engine.pieces(job, state.cfg.request_timeout_s)

    def finish() -> str:
        return "length" if job.completion_tokens >= cfg.max_new_tokens else "stop"

    def usage() -> dict:
        return {"prompt_tokens": job.prompt_tokens, "completion_tokens": job.completion_tokens,
                "total_tokens": job.prompt_tokens + job.completion_tokens}

    if not body.get("stream"):
        try:
            text = "".join(pieces)
        except Exception as exc:  # noqa: BLE001
            audit(f"error: {type(exc).__name__}")
            return error_response(exc)
        audit("ok")
        return JSONResponse({**base, "object": "chat.completion", "usage": usage(),
                             "choices": [{"index": 0, "finish_reason": finish(),
                                          "message": {"role": "assistant", "content": text}}],
                             "p2med": {"sections": parse_sections(text, OUTPUT_KEYS).sections}})

    def events() -> Iterator[str]:
        chunk = {**base, "object": "chat.completion.chunk"}
        yield sse({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                         "finish_reason": None}]})
        text = []
        try:
            for piece in pieces:
                text.append(piece)
                yield sse({**chunk, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        except Exception as exc:  # noqa: BLE001 - the status is sent: the error goes in the stream
            audit(f"error: {type(exc).__name__}")
            yield sse(json.loads(error_response(exc).body))
            yield sse("[DONE]")
            return
        audit("ok")
        last = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish()}],
                "p2med": {"sections": parse_sections("".join(text), OUTPUT_KEYS).sections}}
        if (body.get("stream_options") or {}).get("include_usage"):
            last["usage"] = usage()
        yield sse(last)
        yield sse("[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
