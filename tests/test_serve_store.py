"""The store on both backends, for real: an SQLite file (WAL, synchronous FULL) and a PostgreSQL server from
Debian's package started on 127.0.0.1 for this test (initdb into a temporary folder, stopped afterwards).
Tokens, studies and priors, the draft life cycle with edits and the edit-distance figure, and the append-only
audit behave the same on both."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
import sqlalchemy as sa
from serve_helpers import free_port

from p2med.common.errors import P2MedError
from p2med.serve.store import Store, edit_distance


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@pytest.fixture(scope="module")
def postgres_url():
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        msg = "PostgreSQL is not installed (make sysdeps installs Debian's postgresql)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []   # postgres refuses to run as root
    folder = tempfile.mkdtemp(prefix="p2med-pg-")
    if as_user:
        shutil.chown(folder, "postgres", "postgres")
    data, port = os.path.join(folder, "data"), free_port()
    subprocess.run(as_user + [initdb, "-D", data, "-U", "p2med", "--auth=trust", "-E", "UTF8"], check=True,
                   capture_output=True)
    subprocess.run(as_user + [pg_ctl, "-D", data, "-w", "-l", os.path.join(folder, "log"), "-o",
                              f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=on", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://p2med@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_user + [pg_ctl, "-D", data, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store(str(tmp_path / "serve.db"))
        with s.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2            # FULL
        return s
    return Store(request.getfixturevalue("postgres_url"))


def test_tokens_roles_and_revocation(store):
    token = store.add_user("李医生", "clinician")
    assert store.user_for_token(token)["role"] == "clinician"
    assert store.user_for_token(token + "x") is None
    again = store.add_user("李医生", "admin")                       # a new token replaces the old one
    assert store.user_for_token(token) is None and store.user_for_token(again)["role"] == "admin"
    assert store.revoke_user("李医生") and store.user_for_token(again) is None
    with pytest.raises(P2MedError):
        store.add_user("x", "nurse")
    assert all("token" not in k for u in store.users() for k in u)


def test_studies_priors_drafts_and_quality(store):
    uid = store.add_user("张医生", "clinician")
    me = store.user_for_token(uid)["id"]
    img = [({"role": "frontal", "true_slices": 1}, np.random.default_rng(0).random((1, 8, 8)).astype(np.float32))]
    p = store.hash_id("patient-1")
    old = store.add_study({"modality": "XR", "exam_date": "2022-01-01", "patient_hash": p}, img, me)
    other = store.add_study({"modality": "CT", "exam_date": "2022-01-02", "patient_hash": p}, img, me)
    new = store.add_study({"modality": "XR", "exam_date": "2022-02-01", "patient_hash": p}, img, me)
    arr, true = store.study_arrays(old)[0]
    assert true == 1 and np.abs(arr - img[0][1]).max() < 1e-3                    # float16 storage
    d = store.add_draft(old, "xray_report", "zh", "prompt", "【影像所见】甲", "m@1", "a1", me)
    assert store.priors(new) == []                                               # unsigned: not a prior
    store.edit_draft(d, "【影像所见】乙", me)
    store.edit_draft(d, "【影像所见】乙丙", me)
    signed = store.sign_draft(d, me)
    assert signed["status"] == "signed" and [e["text"] for e in signed["edits"]] == ["【影像所见】乙", "【影像所见】乙丙"]
    a, b = "【影像所见】甲", "【影像所见】乙丙"
    assert signed["edit_distance"] == pytest.approx(edit_distance(a, b) / max(len(a), len(b)))
    with pytest.raises(P2MedError):
        store.edit_draft(d, "late", me)
    assert [x["study"] for x in store.priors(new)] == [old] and store.priors(other) == []
    assert store.quality()["signed"] == 1


def test_audit_is_append_only(store):
    store.audit(None, "chat", "ok", model="m@1", adapter="none", latency_ms=3.5)
    store.audit(None, "chat", "error: TimedOut", latency_ms=9.0)
    for stmt in ("UPDATE audit SET outcome = 'ok'", "DELETE FROM audit"):
        with pytest.raises(sa.exc.DBAPIError):
            with store.engine.begin() as c:
                c.exec_driver_sql(stmt)
    assert [r["outcome"] for r in store.audit_rows()] == ["ok", "error: TimedOut"]


def test_edit_distance():
    assert edit_distance("", "") == 0 and edit_distance("abc", "") == 3 and edit_distance("影像所见", "影像表现") == 2
