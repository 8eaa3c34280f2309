"""The FastAPI application: state, limits, authentication, error shape, and the small routes.

``create_app(state)`` wires the OpenAI-compatible routes (``openai_api.py``), the study/draft/record routes
(``tasks.py``) and the clinician page (``static/index.html`` at ``/``, only to a browser holding the session
cookie that ``POST /session`` sets from a valid token; without it ``/`` answers 401 with the login page
``static/login.html``, which holds nothing but a token field). Every data route needs ``Authorization: Bearer
TOKEN`` (the cookie is not accepted there, so a forged cross-site request carries no credential); only
``/health`` needs nothing. Request bodies above
``max_body_mb`` get 413, a full queue 503, a request past its time 504, bad input 400 with a message that
names the field but never echoes what was sent (no patient identifier in an error). Errors have the OpenAI
shape ``{"error": {"message", "type", "code"}}``. It does not load models: ``server.py`` builds the state.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import anyio
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ..common.errors import P2MedError
from .config import ServeConfig
from .engine import Engine, Overloaded, ShuttingDown, TimedOut
from .store import Store


@dataclass
class ServerState:
    cfg: ServeConfig
    store: Store
    engine: Engine
    model: dict[str, str]            # {"id", "version", "adapter"}: what the audit and /v1/models name
    pacs: Any = None                 # a pacs.Pacs, or None when no PACS is configured
    started: float = field(default_factory=time.time)


class TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: refuse bodies above ``limit`` bytes (declared or streamed) with 413."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _send_413(send, self.limit)
        seen, started = 0, False

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise TooLarge()
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except TooLarge:
            if not started:
                await _send_413(send, self.limit)


async def _send_413(send: Any, limit: int) -> None:
    body = JSONResponse(_error(f"request body larger than {limit} bytes", "request_too_large"), 413).body
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _error(message: str, code: str, kind: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": kind, "code": code}}


def error_response(exc: BaseException) -> JSONResponse:
    """Map an engine / input error to its HTTP answer."""
    if isinstance(exc, Overloaded):
        return JSONResponse(_error(f"server busy: {exc}; retry later", "overloaded", "server_error"), 503,
                            headers={"Retry-After": "1"})
    if isinstance(exc, ShuttingDown):
        return JSONResponse(_error(str(exc), "shutting_down", "server_error"), 503)
    if isinstance(exc, TimedOut):
        return JSONResponse(_error(str(exc), "timeout", "server_error"), 504)
    if isinstance(exc, P2MedError):
        return JSONResponse(_error(str(exc), "bad_input"), 400)
    return JSONResponse(_error(f"internal error ({type(exc).__name__})", "internal", "server_error"), 500)


def state_of(request: Request) -> ServerState:
    return request.app.state.p2med


SESSION_COOKIE = "p2med_session"
PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline'")


def current_user(request: Request) -> dict:
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer ") or not auth[7:].strip():
        raise HTTPException(401, "missing bearer token (Authorization: Bearer TOKEN; p2med user add)",
                            headers={"WWW-Authenticate": "Bearer"})
    user = state_of(request).store.user_for_token(auth[7:].strip())
    if user is None:
        raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return user


def _static_page(name: str, status: int = 200) -> HTMLResponse:
    html = resources.files("p2med.serve").joinpath(f"static/{name}").read_text(encoding="utf-8")
    return HTMLResponse(html, status, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"})


def create_app(state: ServerState) -> FastAPI:
    from . import openai_api, tasks

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        if not state.engine.thread.is_alive():
            state.engine.start()
        yield
        await anyio.to_thread.run_sync(state.engine.stop, state.cfg.shutdown_grace_s)   # after uvicorn's grace

    app = FastAPI(title="P2Med", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.p2med = state
    app.add_middleware(BodyLimit, limit=int(state.cfg.max_body_mb * 1024 * 1024))

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}.get(exc.status_code, "error")
        return JSONResponse(_error(str(exc.detail), code), exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(".".join(str(p) for p in e.get("loc", ()) if p != "body") + f": {e.get('msg')}"
                          for e in exc.errors()[:5])           # no "input": it may hold an identifier
        return JSONResponse(_error(f"bad request: {where}", "bad_input"), 400)

    for kind in (P2MedError, Overloaded, ShuttingDown, TimedOut, Exception):
        app.add_exception_handler(kind, lambda _request, exc: error_response(exc))

    @app.get("/health")
    def health() -> dict:
        return {"status": "stopping" if state.engine.stopping.is_set() else "ok", "model": state.model["id"],
                "queued": state.engine.queued()}

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> HTMLResponse:
        cookie = request.cookies.get(SESSION_COOKIE, "")
        if cookie and state.store.user_for_token(cookie) is not None:
            return _static_page("index.html")
        return _static_page("login.html", 401)         # a token field only; no data, no script beyond logging in

    @app.post("/session", status_code=204)
    def open_session(request: Request, _user: dict = Depends(current_user)) -> Response:
        """The page's login: the bearer token becomes an HttpOnly, same-site-only cookie for ``/``."""
        response = Response(status_code=204)
        response.set_cookie(SESSION_COOKIE, request.headers["authorization"][7:].strip(), httponly=True,
                            samesite="strict", path="/", secure=request.url.scheme == "https")
        return response

    @app.delete("/session", status_code=204)
    def close_session(request: Request) -> Response:
        """Logout: needs the bearer token or a valid session cookie, like every route but /health."""
        cookie = request.cookies.get(SESSION_COOKIE, "")
        if not (cookie and state.store.user_for_token(cookie) is not None):
            current_user(request)                      # 401 unless a valid bearer token is given
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/v1/models")
    def models(_user: dict = Depends(current_user)) -> dict:
        return {"object": "list", "data": [{"id": state.model["id"], "object": "model", "created": int(state.started),
                                            "owned_by": "p2med", "version": state.model["version"],
                                            "adapter": state.model["adapter"]}]}

    @app.get("/v1/quality")
    def quality(_user: dict = Depends(current_user)) -> dict:
        return state.store.quality()

    app.include_router(openai_api.router, dependencies=[Depends(current_user)])
    app.include_router(tasks.router, dependencies=[Depends(current_user)])
    return app
