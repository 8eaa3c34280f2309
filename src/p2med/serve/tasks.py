"""The clinical task routes: studies (upload, PACS pull, list, images), drafts (report or record, streamed),
edits, sign-off, the push of a signed report to the PACS.

A study is addressed by an opaque handle (``st_...``), a draft by ``dr_...``; a UID only ever travels in a
request body (``POST /v1/pacs/pull``) and is never returned. A report draft's conversation holds the patient's
earlier studies of the same modality with their signed reports as priors (multi-round, as in training), then
the study's own prompt. Drafts go draft -> edited (each edit kept) -> signed (by a user with the clinician
role); signing records the normalised draft-to-signed edit distance. Every action is audited, failures too.
It does not know the model beyond the engine. Streams are SSE: ``{"delta": text}`` events, then
``{"draft": handle, "text", "sections", "status"}`` once the draft is stored, then ``[DONE]``.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

from fastapi import APIRouter, Depends, File, HTTPException, Request, Response, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from ..common.errors import P2MedError
from ..export.schema import TASKS
from ..model.generate import GenerationConfig
from ..model.processor import ImageItem
from ..text.sections import parse_sections
from .app import ServerState, current_user, error_response, state_of
from .openai_api import sse
from .prompts import record_prompt, report_prompt
from .study import ingest_study, preview_png

router = APIRouter(prefix="/v1")


class DraftRequest(BaseModel):
    stream: bool = False
    lang: str = Field("zh", pattern="^(zh|en)$")
    max_tokens: int | None = Field(None, ge=1)


class RecordRequest(DraftRequest):
    task: str
    fields: dict[str, str]


class EditRequest(BaseModel):
    text: str = Field(..., max_length=100_000)


class PullRequest(BaseModel):
    study_uid: str = Field(..., min_length=1, max_length=64)


def _public_study(s: dict) -> dict:
    return {"study": s["handle"], "modality": s["modality"], "exam_date": s["exam_date"], "age_days": s["age_days"],
            "source": s["source"], "images": [{"index": i["idx"], "role": i["role"], "slices": i["true_slices"]}
                                              for i in s["images"]], "warnings": s["info"].get("warnings", [])}


def _public_draft(d: dict) -> dict:
    keys = TASKS[d["task"]].outputs
    return {"draft": d["handle"], "study": d["study"], "task": d["task"], "lang": d["lang"], "status": d["status"],
            "draft_text": d["draft_text"], "text": d["text"],
            "sections": parse_sections(d["text"] or "", keys).sections,
            "edits": len(d.get("edits", [])), "signed_by": d["signed_by"], "signed_at": d["signed_at"],
            "edit_distance": d["edit_distance"], "model": d["model"], "adapter": d["adapter"]}


def _study_or_404(state: ServerState, handle: str) -> dict:
    s = state.store.study(handle)
    if s is None:
        raise HTTPException(404, "no such study handle")
    return s


def _draft_or_404(state: ServerState, handle: str) -> dict:
    d = state.store.draft(handle)
    if d is None:
        raise HTTPException(404, "no such draft handle")
    return d


# ---------------------------------------------------------------------------------------------------- studies
def _store_study(state: ServerState, user: dict, files: list[bytes], source: str, uid: str | None,
                 t0: float) -> JSONResponse:
    try:
        info, images = ingest_study(files, state.store.hash_id)
        if uid is not None:
            info.update(study_uid=uid, uid_hash=state.store.hash_id(uid))
        handle = state.store.add_study({**info, "source": source}, images, user["id"])
    except Exception as exc:  # noqa: BLE001
        state.store.audit(user["id"], source, f"error: {type(exc).__name__}", latency_ms=(time.monotonic() - t0) * 1e3)
        return error_response(exc)
    state.store.audit(user["id"], source, "ok", study_hash=info.get("uid_hash"), handle=handle,
                      latency_ms=(time.monotonic() - t0) * 1e3)
    out = _public_study(state.store.study(handle))
    out["priors"] = [{"study": p["study"], "exam_date": p["exam_date"]} for p in state.store.priors(handle)]
    return JSONResponse(out, 201)


@router.post("/studies")
def upload_study(request: Request, files: list[UploadFile] = File(...), user: dict = Depends(current_user)) -> Any:
    t0 = time.monotonic()
    return _store_study(state_of(request), user, [f.file.read() for f in files], "upload", None, t0)


@router.post("/pacs/pull")
def pull_study(body: PullRequest, request: Request, user: dict = Depends(current_user)) -> Any:
    state, t0 = state_of(request), time.monotonic()
    if state.pacs is None:
        raise HTTPException(409, "no PACS is configured (pacs_url)")
    try:
        files = state.pacs.pull(body.study_uid)
    except P2MedError as exc:
        state.store.audit(user["id"], "pacs", f"error: {exc}", study_hash=state.store.hash_id(body.study_uid),
                          latency_ms=(time.monotonic() - t0) * 1e3)
        return JSONResponse({"error": {"message": str(exc), "type": "server_error", "code": "pacs"}}, 502)
    return _store_study(state, user, files, "pacs", body.study_uid, t0)


@router.get("/studies")
def list_studies(request: Request) -> dict:
    return {"studies": [{"study": s["handle"], "modality": s["modality"], "exam_date": s["exam_date"],
                         "images": s["n_images"], "source": s["source"], "signed": bool(s["signed"])}
                        for s in state_of(request).store.studies()]}


@router.get("/studies/{handle}")
def get_study(handle: str, request: Request) -> dict:
    state = state_of(request)
    out = _public_study(_study_or_404(state, handle))
    out["priors"] = state.store.priors(handle)
    return out


@router.get("/studies/{handle}/images/{index}.png")
def study_image(handle: str, index: int, request: Request, slice: int | None = None) -> Response:
    state = state_of(request)
    _study_or_404(state, handle)
    arrays = state.store.study_arrays(handle)
    if not 0 <= index < len(arrays):
        raise HTTPException(404, f"the study has {len(arrays)} image(s); index {index} does not exist")
    arr, true_slices = arrays[index]
    return Response(preview_png(arr[:true_slices], slice), media_type="image/png",
                    headers={"Cache-Control": "private, max-age=3600"})


# ----------------------------------------------------------------------------------------------------- drafts
def _report_conversation(state: ServerState, handle: str, lang: str) -> tuple[dict, str]:
    study = _study_or_404(state, handle)
    turns, images = [], []
    for prior in state.store.priors(handle):
        p = state.store.study(prior["study"])
        arrays = state.store.study_arrays(prior["study"])
        turns.append({"human": report_prompt(p["modality"], p["exam_date"], p["age_days"], len(arrays), lang),
                      "assistant": prior["report"]})
        images += [ImageItem(a, t) for a, t in arrays]
    arrays = state.store.study_arrays(handle)
    prompt = report_prompt(study["modality"], study["exam_date"], study["age_days"], len(arrays), lang)
    turns.append({"human": prompt})
    images += [ImageItem(a, t) for a, t in arrays]
    return {"turns": turns, "images": images, "lang": lang}, prompt


def _draft(state: ServerState, user: dict, conv: dict, prompt: str, task: str, study: dict | None,
           req: DraftRequest) -> Any:
    t0 = time.monotonic()
    cap = state.cfg.max_new_tokens
    action = f"draft:{task}"
    audit = dict(study_hash=study["uid_hash"] if study else None, model=state.model["version"],
                 adapter=state.model["adapter"])
    try:
        job = state.engine.submit(conv, GenerationConfig(max_new_tokens=min(req.max_tokens or cap, cap)))
    except Exception as exc:  # noqa: BLE001
        state.store.audit(user["id"], action, f"error: {type(exc).__name__}", **audit,
                          latency_ms=(time.monotonic() - t0) * 1e3)
        return error_response(exc)
    pieces = state.engine.pieces(job, state.cfg.request_timeout_s)

    def store(text: str) -> dict:
        handle = state.store.add_draft(study["handle"] if study else None, task, req.lang, prompt, text,
                                       state.model["version"], state.model["adapter"], user["id"])
        state.store.audit(user["id"], action, "ok", handle=handle, **audit, latency_ms=(time.monotonic() - t0) * 1e3)
        return _public_draft(state.store.draft(handle))

    if not req.stream:
        try:
            text = "".join(pieces)
        except Exception as exc:  # noqa: BLE001
            state.store.audit(user["id"], action, f"error: {type(exc).__name__}", **audit,
                              latency_ms=(time.monotonic() - t0) * 1e3)
            return error_response(exc)
        return JSONResponse(store(text), 201)

    def events() -> Iterator[str]:
        text = []
        try:
            for piece in pieces:
                text.append(piece)
                yield sse({"delta": piece})
        except Exception as exc:  # noqa: BLE001
            state.store.audit(user["id"], action, f"error: {type(exc).__name__}", **audit,
                              latency_ms=(time.monotonic() - t0) * 1e3)
            yield sse(error_response(exc).body.decode())
            yield sse("[DONE]")
            return
        yield sse(store("".join(text)))
        yield sse("[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.post("/studies/{handle}/draft")
def draft_report(handle: str, req: DraftRequest, request: Request, user: dict = Depends(current_user)) -> Any:
    state = state_of(request)
    study = _study_or_404(state, handle)
    conv, prompt = _report_conversation(state, handle, req.lang)
    task = "xray_report" if study["modality"] == "XR" else "ct_report"
    return _draft(state, user, conv, prompt, task, study, req)


@router.post("/records/draft")
def draft_record(req: RecordRequest, request: Request, user: dict = Depends(current_user)) -> Any:
    state = state_of(request)
    try:
        prompt = record_prompt(req.task, req.fields, req.lang)
    except P2MedError as exc:
        state.store.audit(user["id"], f"draft:{req.task[:30]}", "error: bad_input")
        return error_response(exc)
    return _draft(state, user, {"turns": [{"human": prompt}], "images": [], "lang": req.lang}, prompt, req.task,
                  None, req)


@router.get("/drafts/{handle}")
def get_draft(handle: str, request: Request) -> dict:
    return _public_draft(_draft_or_404(state_of(request), handle))


@router.put("/drafts/{handle}")
def edit_draft(handle: str, body: EditRequest, request: Request, user: dict = Depends(current_user)) -> Any:
    state = state_of(request)
    _draft_or_404(state, handle)
    try:
        d = state.store.edit_draft(handle, body.text, user["id"])
    except P2MedError as exc:
        state.store.audit(user["id"], "edit", "error: signed", handle=handle)
        return JSONResponse({"error": {"message": str(exc), "type": "invalid_request_error", "code": "conflict"}}, 409)
    state.store.audit(user["id"], "edit", "ok", handle=handle)
    return _public_draft(d)


@router.post("/drafts/{handle}/sign")
def sign_draft(handle: str, request: Request, user: dict = Depends(current_user)) -> Any:
    state = state_of(request)
    _draft_or_404(state, handle)
    if user["role"] != "clinician":
        state.store.audit(user["id"], "sign", "error: not a clinician", handle=handle)
        raise HTTPException(403, "sign-off needs a user with the clinician role")
    try:
        d = state.store.sign_draft(handle, user["id"])
    except P2MedError as exc:
        state.store.audit(user["id"], "sign", "error: already signed", handle=handle)
        return JSONResponse({"error": {"message": str(exc), "type": "invalid_request_error", "code": "conflict"}}, 409)
    state.store.audit(user["id"], "sign", "ok", handle=handle)
    out = _public_draft(d)
    out["signer"] = user["name"]
    return out


@router.post("/drafts/{handle}/push")
def push_draft(handle: str, request: Request, user: dict = Depends(current_user)) -> Any:
    state, t0 = state_of(request), time.monotonic()
    d = _draft_or_404(state, handle)
    study = state.store.study(d["study"]) if d["study"] else None
    if state.pacs is None or d["status"] != "signed" or not study or not study["study_uid"]:
        raise HTTPException(409, "only a signed report of a study pulled from the configured PACS can be pushed")
    signer = next((u["name"] for u in state.store.users() if u["id"] == d["signed_by"]), "")
    try:
        sop = state.pacs.push_report(study["study_uid"], d["text"], _public_draft(d)["sections"], signer,
                                     state.model["version"])
    except P2MedError as exc:
        state.store.audit(user["id"], "push", f"error: {exc}", study_hash=study["uid_hash"], handle=handle,
                          latency_ms=(time.monotonic() - t0) * 1e3)
        return JSONResponse({"error": {"message": str(exc), "type": "server_error", "code": "pacs"}}, 502)
    state.store.audit(user["id"], "push", "ok", study_hash=study["uid_hash"], handle=handle,
                      latency_ms=(time.monotonic() - t0) * 1e3)
    return {"draft": handle, "pushed": True, "sr_instance_hash": state.store.hash_id(sop)}


