"""The API in process (FastAPI TestClient, real SQLite file, the mini model with random weights): every route,
authentication, the error shapes (400/401/403/404/409/413/503/504), the draft life cycle with priors, the audit
trail, and that no study UID or patient id comes back in any answer or log line."""

from __future__ import annotations

import base64
import io
import json
import logging

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from PIL import Image
from serve_helpers import add_user, checkpoint, make_state, xray_study

from p2med.serve.app import create_app
from p2med.serve.engine import Overloaded
from p2med.serve.tasks import _report_conversation


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-api")
    db = str(tmp / "serve.db")
    state = make_state(checkpoint(tmp), db, max_new_tokens=12, max_body_mb=1.0, threads=1)
    tokens = {"clinician": add_user(db, "王医生", "clinician"), "admin": add_user(db, "管理员", "admin")}
    with TestClient(create_app(state)) as client:
        yield client, state, tokens, tmp


def auth(env, role="clinician"):
    return {"Authorization": f"Bearer {env[2][role]}"}


def upload(env, patient="P0001", date="20220101", seed=0):
    client, _, _, tmp = env
    paths = xray_study(tmp / f"{patient}-{date}", patient, date, seed)
    uid = str(__import__("pydicom").dcmread(paths[0]).StudyInstanceUID)
    r = client.post("/v1/studies", headers=auth(env),
                    files=[("files", (p.name, p.read_bytes(), "application/dicom")) for p in paths])
    assert r.status_code == 201, r.text
    return r.json(), uid


def png_data_url(seed=0) -> str:
    img = (np.random.default_rng(seed).random((64, 60)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


ROUTES = [("get", "/v1/models"), ("post", "/v1/chat/completions"), ("get", "/v1/studies"), ("post", "/v1/studies"),
          ("get", "/v1/studies/st_x"), ("get", "/v1/studies/st_x/images/0.png"), ("post", "/v1/studies/st_x/draft"),
          ("post", "/v1/records/draft"), ("get", "/v1/drafts/dr_x"), ("put", "/v1/drafts/dr_x"),
          ("post", "/v1/drafts/dr_x/sign"), ("post", "/v1/drafts/dr_x/push"), ("post", "/v1/pacs/pull"),
          ("get", "/v1/quality"), ("post", "/session"), ("delete", "/session")]


@pytest.mark.parametrize("method,path", ROUTES)
def test_every_route_but_health_needs_a_token(env, method, path):
    client = env[0]
    assert getattr(client, method)(path).status_code == 401
    r = getattr(client, method)(path, headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_health_and_models(env):
    client, state = env[0], env[1]
    assert client.get("/health").json()["status"] == "ok"
    model = client.get("/v1/models", headers=auth(env)).json()["data"][0]
    assert model["id"] == state.model["id"] and model["adapter"] != "none"      # the LoRA adapter is named


def test_page_needs_the_session_cookie_set_from_a_token(env):
    client = env[0]
    login = client.get("/")
    assert login.status_code == 401 and 'id="token"' in login.text and "生成报告" not in login.text
    assert client.post("/session").status_code == 401                           # no token, no cookie
    assert client.post("/session", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert "p2med_session" not in client.cookies
    opened = client.post("/session", headers=auth(env))
    assert opened.status_code == 204
    cookie = opened.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = client.get("/")
    assert page.status_code == 200 and "生成报告" in page.text
    for html in (login.text, page.text):
        assert "http://" not in html and "https://" not in html                 # no external asset
    assert client.get("/v1/studies").status_code == 401                         # the cookie is no API credential
    assert client.delete("/session").status_code == 204                        # the cookie identifies the user
    client.cookies.clear()                                                      # (the test client keeps its jar)
    assert client.get("/").status_code == 401
    assert client.delete("/session").status_code == 401                        # no cookie, no token


def test_chat_completion_plain_and_streamed_agree(env):
    client = env[0]
    body = {"model": "x", "max_tokens": 8, "messages": [
        {"role": "system", "content": "你是儿科医生"},
        {"role": "user", "content": [{"type": "text", "text": "【影像】"},
                                     {"type": "image_url", "image_url": {"url": png_data_url()}}]}]}
    r = client.post("/v1/chat/completions", headers=auth(env), json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["object"] == "chat.completion" and out["usage"]["completion_tokens"] <= 8
    with client.stream("POST", "/v1/chat/completions", headers=auth(env), json={**body, "stream": True}) as resp:
        lines = [ln for ln in resp.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(ln[6:]) for ln in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == out["choices"][0]["message"]["content"]                     # greedy: same answer
    assert chunks[-1]["choices"][0]["finish_reason"] == out["choices"][0]["finish_reason"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x.png", "https://example.org/a.png", "file:///etc/passwd",
                                 "data:text/plain;base64,aGk=", "data:image/png;base64,###"])
def test_non_data_image_urls_are_refused(env, url):
    body = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]}
    r = env[0].post("/v1/chat/completions", headers=auth(env), json=body)
    assert r.status_code == 400 and "image_url" in r.json()["error"]["message"]


@pytest.mark.parametrize("body", [{}, {"messages": []}, {"messages": [{"role": "assistant", "content": "x"}]},
                                  {"messages": [{"role": "user", "content": [{"type": "audio"}]}]},
                                  {"messages": [{"role": "user", "content": "x"}], "max_tokens": -1},
                                  {"messages": [{"role": "robot", "content": "x"}]}])
def test_bad_chat_requests_are_400(env, body):
    r = env[0].post("/v1/chat/completions", headers=auth(env), json=body)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_bad_json_and_oversized_bodies(env):
    client = env[0]
    r = client.post("/v1/chat/completions", headers={**auth(env), "Content-Type": "application/json"}, content=b"{")
    assert r.status_code == 400
    big = {"messages": [{"role": "user", "content": "咳" * 600_000}]}                # > 1 MB
    assert client.post("/v1/chat/completions", headers=auth(env), json=big).status_code == 413


def test_overload_and_timeout_answers(env, monkeypatch):
    client, state = env[0], env[1]
    body = {"messages": [{"role": "user", "content": "咳嗽"}], "max_tokens": 4}

    def full(*_a, **_k):
        raise Overloaded("queue full")
    with monkeypatch.context() as m:
        m.setattr(state.engine, "submit", full)
        r = client.post("/v1/chat/completions", headers=auth(env), json=body)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
    with monkeypatch.context() as m:
        m.setattr(state.cfg, "request_timeout_s", 1e-6)
        r = client.post("/v1/chat/completions", headers=auth(env), json=body)
        assert r.status_code == 504
    assert client.get("/health").json()["status"] == "ok"                       # the server carries on


def test_study_draft_edit_sign_with_priors(env, caplog):
    client, state = env[0], env[1]
    caplog.set_level(logging.DEBUG)
    first, uid1 = upload(env, "P7001", "20220101", seed=1)
    assert first["modality"] == "XR" and first["images"][0]["role"] == "frontal" and first["priors"] == []
    r = client.post(f"/v1/studies/{first['study']}/draft", headers=auth(env), json={"max_tokens": 6})
    assert r.status_code == 201
    d = r.json()
    assert d["status"] == "draft" and d["task"] == "xray_report"
    signed_text = "【影像所见】右肺下野斑片影。\n【影像诊断】支气管肺炎。"
    r = client.put(f"/v1/drafts/{d['draft']}", headers=auth(env), json={"text": signed_text})
    assert r.json()["status"] == "edited" and r.json()["sections"]["impression"] == "支气管肺炎。"
    assert client.post(f"/v1/drafts/{d['draft']}/sign", headers=auth(env, "admin")).status_code == 403
    r = client.post(f"/v1/drafts/{d['draft']}/sign", headers=auth(env))
    assert r.status_code == 200 and r.json()["status"] == "signed" and r.json()["signer"] == "王医生"
    assert 0 < r.json()["edit_distance"] <= 1
    assert client.post(f"/v1/drafts/{d['draft']}/sign", headers=auth(env)).status_code == 409
    assert client.put(f"/v1/drafts/{d['draft']}", headers=auth(env), json={"text": "x"}).status_code == 409
    stored = state.store.draft(d["draft"])
    assert stored["draft_text"] == d["text"] and [e["text"] for e in stored["edits"]] == [signed_text]

    second, uid2 = upload(env, "P7001", "20220301", seed=2)                     # same child, later: a prior
    assert [p["study"] for p in second["priors"]] == [first["study"]]
    conv, _ = _report_conversation(state, second["study"], "zh")
    assert len(conv["turns"]) == 2 and conv["turns"][0]["assistant"] == signed_text and len(conv["images"]) == 2
    with client.stream("POST", f"/v1/studies/{second['study']}/draft", headers=auth(env),
                       json={"stream": True, "max_tokens": 6}) as resp:
        events = [ln[6:] for ln in resp.iter_lines() if ln]
    assert events[-1] == "[DONE]"
    final = json.loads(events[-2])
    assert final["text"] == "".join(json.loads(e)["delta"] for e in events[:-2])
    assert client.get(f"/v1/drafts/{final['draft']}", headers=auth(env)).json()["status"] == "draft"
    listed = client.get("/v1/studies", headers=auth(env)).json()["studies"]
    assert {s["study"]: s["signed"] for s in listed}[first["study"]] is True
    png = client.get(f"/v1/studies/{first['study']}/images/0.png", headers=auth(env))
    assert png.headers["content-type"] == "image/png" and Image.open(io.BytesIO(png.content)).size == (336, 336)
    assert client.get(f"/v1/studies/{first['study']}/images/5.png", headers=auth(env)).status_code == 404
    q = client.get("/v1/quality", headers=auth(env)).json()
    assert q["signed"] >= 1 and 0 < q["mean_edit_distance"] <= 1
    detail = client.get(f"/v1/studies/{second['study']}", headers=auth(env)).text
    every = detail + json.dumps(listed) + json.dumps(state.store.audit_rows()) + caplog.text
    for secret in (uid1, uid2, "P7001", "ACC00001"):
        assert secret not in every


def test_unknown_handles_bad_uploads_and_records(env):
    client = env[0]
    for method, path in [("get", "/v1/studies/st_nope"), ("post", "/v1/studies/st_nope/draft"),
                         ("get", "/v1/drafts/dr_nope"), ("post", "/v1/drafts/dr_nope/sign")]:
        kwargs = {"json": {}} if method == "post" else {}
        assert getattr(client, method)(path, headers=auth(env), **kwargs).status_code == 404
    r = client.post("/v1/studies", headers=auth(env), files=[("files", ("张三-身份证.dcm", b"not dicom", "x"))])
    assert r.status_code == 400 and "张三" not in r.text
    r = client.post("/v1/records/draft", headers=auth(env), json={"task": "surgery", "fields": {"x": "y"}})
    assert r.status_code == 400
    r = client.post("/v1/records/draft", headers=auth(env),
                    json={"task": "outpatient", "fields": {"chief_complaint": "发热2天"}, "max_tokens": 5})
    assert r.status_code == 201 and r.json()["study"] is None and r.json()["task"] == "outpatient"
    r = client.post("/v1/pacs/pull", headers=auth(env), json={"study_uid": "1.2.3"})
    assert r.status_code == 409 and "1.2.3" not in r.text                       # no PACS configured here
    r = client.post("/v1/pacs/pull", headers=auth(env), json={"study_uid": ""})
    assert r.status_code == 400


def test_audit_is_append_only_and_records_failures(env):
    state = env[1]
    rows = state.store.audit_rows()
    assert any(r["outcome"].startswith("error") for r in rows) and any(r["outcome"] == "ok" for r in rows)
    assert all(r["at"] and r["action"] for r in rows)
    drafts = [r for r in rows if r["action"].startswith("draft:") and r["outcome"] == "ok"]
    assert all(r["model"] == state.model["version"] and r["latency_ms"] > 0 for r in drafts)
    with pytest.raises(sa.exc.DatabaseError):
        with state.store.engine.begin() as c:
            c.exec_driver_sql("UPDATE audit SET outcome = 'ok'")
    with pytest.raises(sa.exc.DatabaseError):
        with state.store.engine.begin() as c:
            c.exec_driver_sql("DELETE FROM audit")
    assert len(state.store.audit_rows()) == len(rows)


def test_ct_study_through_the_study_routes(env):
    from imaging_factory import ct_series

    client, tmp = env[0], env[3]
    paths = ct_series(tmp / "ct", n=6, size=48, seed="serve-ct")
    r = client.post("/v1/studies", headers=auth(env),
                    files=[("files", (p.name, p.read_bytes(), "application/dicom")) for p in paths])
    assert r.status_code == 201, r.text
    study = r.json()
    assert study["modality"] == "CT" and study["images"][0]["slices"] == 6
    d = client.post(f"/v1/studies/{study['study']}/draft", headers=auth(env), json={"max_tokens": 4})
    assert d.status_code == 201 and d.json()["task"] == "ct_report"
    png = client.get(f"/v1/studies/{study['study']}/images/0.png?slice=5", headers=auth(env))
    assert png.status_code == 200 and Image.open(io.BytesIO(png.content)).size == (336, 336)


def test_user_command_creates_working_tokens(env, capsys):
    from p2med.cli import main

    db = str(env[3] / "serve.db")
    assert main(["user", "add", "赵医生", "--role", "clinician", "--db", db]) == 0
    token = capsys.readouterr().out.strip()
    assert env[0].get("/v1/models", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert main(["user", "list", "--db", db]) == 0 and "赵医生\tclinician\tactive" in capsys.readouterr().out
    assert main(["user", "revoke", "赵医生", "--db", db]) == 0
    assert env[0].get("/v1/models", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert main(["user", "revoke", "nobody", "--db", db]) == 2                   # one-line error, exit 2
    assert main(["serve", "--model", str(env[3] / "no-such-ckpt"), "--db", db]) == 2
    assert "not a checkpoint folder" in capsys.readouterr().err
