"""The PACS round trip against a real Orthanc with its DICOMweb plugin on 127.0.0.1 (Debian packages unpacked
with dpkg -x): the server pulls a study by StudyInstanceUID (WADO-RS, basic auth), drafts, signs, and pushes the
signed report back as a Basic Text SR (STOW-RS) that Orthanc then holds in the same study; the UID and the
PACS URL appear in no answer, audit row or log line."""

from __future__ import annotations

import json
import logging

import pydicom
import pytest
from fastapi.testclient import TestClient
from orthanc_helpers import start_orthanc
from serve_helpers import add_user, checkpoint, xray_study

from p2med.serve.app import create_app
from p2med.serve.config import ServeConfig
from p2med.serve.server import build_state


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    with start_orthanc(tmp_path_factory.mktemp("orthanc-web"), dicomweb=True) as server:
        yield server


def test_pull_draft_sign_push_sr(pacs, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    paths = xray_study(tmp_path / "study", "P9001", "20230405", seed=9)
    uid = str(pydicom.dcmread(paths[0]).StudyInstanceUID)
    for p in paths:
        pacs.request("/instances", p.read_bytes())
    db = str(tmp_path / "s.db")
    cfg = ServeConfig(db=db, max_new_tokens=8, threads=1, pacs_url=pacs.url + "/dicom-web", pacs_user=pacs.user)
    state = build_state(cfg, checkpoint(tmp_path), pacs_password=pacs.password)
    h = {"Authorization": f"Bearer {add_user(db)}"}
    with TestClient(create_app(state)) as client:
        r = client.post("/v1/pacs/pull", headers=h, json={"study_uid": uid})
        assert r.status_code == 201, r.text
        study = r.json()
        assert study["source"] == "pacs" and study["exam_date"] == "2023-04-05" and len(study["images"]) == 1
        d = client.post(f"/v1/studies/{study['study']}/draft", headers=h, json={}).json()
        text = "【影像所见】双肺纹理增多。\n【影像诊断】支气管炎。"
        client.put(f"/v1/drafts/{d['draft']}", headers=h, json={"text": text})
        assert client.post(f"/v1/drafts/{d['draft']}/push", headers=h).status_code == 409   # not signed yet
        client.post(f"/v1/drafts/{d['draft']}/sign", headers=h)
        r = client.post(f"/v1/drafts/{d['draft']}/push", headers=h)
        assert r.status_code == 200, r.text
        missing = client.post("/v1/pacs/pull", headers=h, json={"study_uid": "1.2.826.0.1.999"})
        assert missing.status_code == 502 and "1.2.826.0.1.999" not in missing.text
        answers = json.dumps(study) + r.text + json.dumps(state.store.audit_rows())
    studies = json.loads(pacs.request("/studies?expand"))
    assert len(studies) == 1 and studies[0]["MainDicomTags"]["StudyInstanceUID"] == uid
    series = [json.loads(pacs.request(f"/series/{s}")) for s in studies[0]["Series"]]
    sr = [s for s in series if s["MainDicomTags"].get("Modality") == "SR"]
    assert len(sr) == 1
    ds = pydicom.dcmread(__import__("io").BytesIO(pacs.request(f"/instances/{sr[0]['Instances'][0]}/file")))
    assert ds.SOPClassUID == pydicom.uid.BasicTextSRStorage and ds.PatientID == "P9001"
    assert ds.VerifyingObserverSequence[0].VerifyingObserverName.family_name == "王医生"
    values = [item.TextValue for item in ds.ContentSequence]
    assert values == ["双肺纹理增多。", "支气管炎。"]
    for secret in (uid, pacs.url, "P9001"):
        assert secret not in answers and secret not in caplog.text
