"""The clinician page in Debian's headless chromium (Playwright) against a live ``p2med serve`` on 127.0.0.1:
a wrong token refused, log in with a token, upload a DICOM study, watch the draft stream in, edit it, sign off; the streamed text and
the signed state show on the page and in the store, and every request the browser made stayed on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
from urllib.parse import urlparse

import httpx
import pytest
from serve_helpers import checkpoint, live_server, xray_study

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.slow
def test_upload_stream_edit_sign_in_chromium(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        msg = "Debian's chromium is not installed (make sysdeps installs it)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    files = xray_study(tmp_path / "study", "P5001", "20240110", seed=5)
    with live_server(checkpoint(tmp_path), str(tmp_path / "page.db"), "max_new_tokens=24") as (url, token, _), \
            sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url + "/")                           # no session: the login page only
        assert page.locator("#upload").count() == 0
        page.fill("#token", "not-a-token")
        page.click("#save-token")
        expect = sync_api.expect                       # (wait_for_function would need 'unsafe-eval' in the page's CSP)
        expect(page.locator("#message")).to_contain_text("令牌无效", timeout=10_000)
        page.fill("#token", token)
        page.click("#save-token")
        page.wait_for_selector("#upload")
        page.set_input_files("#files", [str(p) for p in files])
        page.click("#upload")
        page.wait_for_selector("#images img")
        assert "2024-01-10" in page.inner_text("#study-info")
        page.click("#generate")
        expect(page.locator("#draft-status")).to_have_text("草稿", timeout=60_000)
        shown = page.input_value("#draft")
        headers = {"Authorization": f"Bearer {token}"}
        studies = httpx.get(url + "/v1/studies", headers=headers).json()["studies"]
        assert len(studies) == 1
        signed_text = "【影像所见】双肺纹理增粗。\n【影像诊断】支气管炎。"
        page.fill("#draft", signed_text)
        page.click("#sign")
        expect(page.locator("#draft-status")).to_have_text("已签发", timeout=30_000)
        assert page.inner_text("#message") == ""
        expect(page.locator("#studies")).to_contain_text("已签发", timeout=30_000)   # the list refreshes after
        assert page.is_disabled("#sign")
        page.click("#logout")                          # the cookie goes: back to the login page
        page.wait_for_selector("#save-token")
        assert page.locator("#upload").count() == 0
        browser.close()
    from p2med.serve.store import Store

    store = Store(str(tmp_path / "page.db"))
    [draft] = [store.draft(r["handle"]) for r in store.audit_rows() if r["action"] == "sign" and r["outcome"] == "ok"]
    assert draft["draft_text"] == shown                      # what streamed onto the page is the stored draft
    assert draft["status"] == "signed" and draft["text"] == signed_text and len(draft["edits"]) == 1
    hosts = {urlparse(u).hostname for u in requests if not u.startswith(("blob:", "data:"))}
    assert hosts == {"127.0.0.1"}, f"the page reached beyond loopback: {sorted(hosts)}"
