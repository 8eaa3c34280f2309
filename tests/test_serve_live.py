"""``p2med serve`` as a real process on 127.0.0.1: the official ``openai`` client (streamed and not), a bounded
load test (8 clients x 20 requests: only 200s and queue 503s, flat memory), graceful SIGTERM, and a SIGKILL in
the middle of writes that loses no acknowledged draft or audit row."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import psutil
import pytest
from serve_helpers import checkpoint, live_server

from p2med.serve.store import Store


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-live")
    with live_server(checkpoint(tmp), str(tmp / "live.db"), "max_queue=3", "max_batch=4", "max_new_tokens=16",
                     log=tmp / "server.log") as (url, token, proc):
        yield url, token, proc, tmp


def test_openai_client_streamed_and_not(server):
    from openai import OpenAI

    url, token, _, _ = server
    client = OpenAI(base_url=url + "/v1", api_key=token, max_retries=0)
    assert [m.id for m in client.models.list().data] == ["ckpt"]
    messages = [{"role": "user", "content": "当前病历资料如下：【主诉】咳嗽3天，发热1天。"}]
    out = client.chat.completions.create(model="ckpt", messages=messages, max_tokens=10)
    text = out.choices[0].message.content
    assert out.usage.completion_tokens <= 10 and out.choices[0].finish_reason in ("stop", "length")
    pieces = [c.choices[0].delta.content or "" for c in
              client.chat.completions.create(model="ckpt", messages=messages, max_tokens=10, stream=True)
              if c.choices]
    assert "".join(pieces) == text and len(pieces) > 1                         # streamed, and the same answer
    bad = OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(Exception) as exc:
        bad.chat.completions.create(model="ckpt", messages=messages)
    assert getattr(exc.value, "status_code", None) == 401


def test_bounded_load_only_503s_and_flat_memory(server):
    url, token, proc, _ = server
    headers = {"Authorization": f"Bearer {token}"}
    body = {"messages": [{"role": "user", "content": "【主诉】咳嗽"}], "max_tokens": 4}
    statuses: list[int] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            for _ in range(n):
                code = c.post("/v1/chat/completions", json=body).status_code
                with lock:
                    statuses.append(code)

    def wave(n: int) -> None:
        threads = [threading.Thread(target=client, args=(n,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    wave(5)                                                                     # warm up
    rss0 = psutil.Process(proc.pid).memory_info().rss
    wave(15)
    rss1 = psutil.Process(proc.pid).memory_info().rss
    assert len(statuses) == 160 and set(statuses) <= {200, 503} and statuses.count(200) >= 8
    assert rss1 - rss0 < 64 * 2**20, f"memory grew by {(rss1 - rss0) / 2**20:.1f} MB over 120 requests"
    assert httpx.get(url + "/health").json()["status"] == "ok"


@pytest.mark.slow
def test_sigterm_finishes_in_flight_requests(tmp_path):
    with live_server(checkpoint(tmp_path), str(tmp_path / "t.db"), "max_new_tokens=64") as (url, token, proc):
        results = []
        body = {"messages": [{"role": "user", "content": "【主诉】发热"}], "max_tokens": 64}

        def ask():
            try:
                results.append(httpx.post(url + "/v1/chat/completions", json=body, timeout=60,
                                          headers={"Authorization": f"Bearer {token}"}).status_code)
            except httpx.HTTPError as exc:
                results.append(type(exc).__name__)
        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join()
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)      # uvicorn re-raises the signal once it is done
    assert results and set(results) <= {200, 503}                  # finished, or refused cleanly: never dropped


@pytest.mark.slow
def test_sigkill_mid_write_loses_no_acknowledged_row(tmp_path):
    db = str(tmp_path / "k.db")
    acked: list[str] = []
    stop = threading.Event()
    with live_server(checkpoint(tmp_path), db, "max_new_tokens=2", "max_queue=64") as (url, token, proc):
        headers = {"Authorization": f"Bearer {token}"}

        def writer():
            with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
                while not stop.is_set():
                    try:
                        r = c.post("/v1/records/draft", json={"task": "outpatient", "max_tokens": 2,
                                                              "fields": {"chief_complaint": "咳嗽"}})
                        if r.status_code == 201:
                            h = r.json()["draft"]
                            if c.put(f"/v1/drafts/{h}", json={"text": "【初步诊断】肺炎"}).status_code == 200:
                                acked.append(h)
                    except httpx.HTTPError:
                        return
        threads = [threading.Thread(target=writer) for _ in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stop.set()
        for t in threads:
            t.join()
    assert len(acked) >= 20
    store = Store(db)
    rows = store.audit_rows()
    edited = {r["handle"] for r in rows if r["action"] == "edit" and r["outcome"] == "ok"}
    drafted = {r["handle"] for r in rows if r["action"] == "draft:outpatient" and r["outcome"] == "ok"}
    for h in acked:
        d = store.draft(h)
        assert d is not None and d["status"] == "edited" and d["text"] == "【初步诊断】肺炎"
        assert h in edited and h in drafted
