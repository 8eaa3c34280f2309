"""The server's store: users and tokens, studies (ingested arrays), drafts with every edit, an append-only audit.

SQLite by default (WAL, ``synchronous=FULL``: an acknowledged write survives a SIGKILL) or PostgreSQL by
SQLAlchemy URL. Studies and drafts are addressed by opaque random handles; the study UID and the patient id
are kept as keyed hashes (the key is a random secret made once per store), so the store links a
patient's studies for priors without holding the patient id; a study pulled from the PACS also keeps its UID
(column ``study_uid``, never returned by the API) to push the signed report back. The audit table refuses
UPDATE and DELETE (triggers).
It does not know the model or HTTP. Example::

    store = Store("serve.db")
    token = store.add_user("王医生", "clinician")
    user = store.user_for_token(token)          # {"id": 1, "name": "王医生", "role": "clinician"}
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import secrets
from typing import Any

import numpy as np
import sqlalchemy as sa

from ..common.errors import P2MedError

ROLES = ("clinician", "admin")
STATUSES = ("draft", "edited", "signed")
meta = sa.MetaData()
T_META = sa.Table("meta", meta, sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text))
T_USERS = sa.Table(
    "users", meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), unique=True, nullable=False), sa.Column("role", sa.String(20), nullable=False),
    sa.Column("token_sha256", sa.String(64), unique=True, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True), sa.Column("created_at", sa.String(32)))
T_STUDIES = sa.Table(
    "studies", meta, sa.Column("handle", sa.String(40), primary_key=True),
    sa.Column("uid_hash", sa.String(64), index=True), sa.Column("study_uid", sa.String(64)),
    sa.Column("patient_hash", sa.String(64), index=True),
    sa.Column("modality", sa.String(4)), sa.Column("exam_date", sa.String(10)), sa.Column("age_days", sa.Integer),
    sa.Column("n_images", sa.Integer), sa.Column("source", sa.String(10)), sa.Column("info", sa.Text),
    sa.Column("created_by", sa.Integer), sa.Column("created_at", sa.String(32)))
T_IMAGES = sa.Table(
    "images", meta, sa.Column("study", sa.String(40), primary_key=True), sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("role", sa.String(40)), sa.Column("true_slices", sa.Integer), sa.Column("array", sa.LargeBinary))
T_DRAFTS = sa.Table(
    "drafts", meta, sa.Column("handle", sa.String(40), primary_key=True), sa.Column("study", sa.String(40), index=True),
    sa.Column("task", sa.String(40)), sa.Column("lang", sa.String(4)), sa.Column("prompt", sa.Text),
    sa.Column("draft_text", sa.Text), sa.Column("text", sa.Text), sa.Column("status", sa.String(10)),
    sa.Column("model", sa.String(200)), sa.Column("adapter", sa.String(200)), sa.Column("created_by", sa.Integer),
    sa.Column("created_at", sa.String(32)), sa.Column("signed_by", sa.Integer), sa.Column("signed_at", sa.String(32)),
    sa.Column("edit_distance", sa.Float))
T_EDITS = sa.Table(
    "edits", meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("draft", sa.String(40), index=True), sa.Column("user_id", sa.Integer), sa.Column("text", sa.Text),
    sa.Column("at", sa.String(32)))
T_AUDIT = sa.Table(
    "audit", meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(32), nullable=False), sa.Column("user_id", sa.Integer),
    sa.Column("action", sa.String(40)),
    sa.Column("study_hash", sa.String(64)), sa.Column("handle", sa.String(40)), sa.Column("model", sa.String(200)),
    sa.Column("adapter", sa.String(200)), sa.Column("latency_ms", sa.Float), sa.Column("outcome", sa.String(200)))

_SQLITE_GUARD = ["CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "
                 "BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END",
                 "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit "
                 "BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END"]
_PG_GUARD = ["CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$ BEGIN "
             "RAISE EXCEPTION 'audit is append-only'; END $$ LANGUAGE plpgsql",
             "DROP TRIGGER IF EXISTS audit_guard ON audit",
             "CREATE TRIGGER audit_guard BEFORE UPDATE OR DELETE ON audit FOR EACH ROW "
             "EXECUTE FUNCTION audit_append_only()"]


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def handle(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(12)}"


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance in characters (insert, delete, substitute)."""
    if len(a) < len(b):
        a, b = b, a
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def array_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr.astype(np.float16), allow_pickle=False)
    return buf.getvalue()


def _url(db: str) -> str:
    return db if "://" in db else f"sqlite:///{db}"


class Store:
    def __init__(self, db: str) -> None:
        self.url = _url(db)
        self.sqlite = self.url.startswith("sqlite")
        try:
            self.engine = sa.create_engine(self.url, pool_pre_ping=not self.sqlite)
            if self.sqlite:
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            meta.create_all(self.engine)
            with self.engine.begin() as c:
                for stmt in (_SQLITE_GUARD if self.sqlite else _PG_GUARD):
                    c.exec_driver_sql(stmt)
                if c.execute(sa.select(T_META.c.value).where(T_META.c.key == "hash_key")).first() is None:
                    c.execute(T_META.insert().values(key="hash_key", value=secrets.token_hex(32)))
                self._key = bytes.fromhex(c.execute(
                    sa.select(T_META.c.value).where(T_META.c.key == "hash_key")).scalar_one())
        except sa.exc.SQLAlchemyError as exc:
            raise P2MedError(f"store {self.describe()}: cannot open ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200]})") from exc

    def describe(self) -> str:
        """The store's kind and place without credentials."""
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def hash_id(self, value: str) -> str:
        """A keyed hash of a UID or patient id: links records without holding the identifier."""
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------------------------------------ users
    def add_user(self, name: str, role: str) -> str:
        """Create a user (or give an existing one a new token); returns the token, shown only once."""
        if role not in ROLES:
            raise P2MedError(f"role {role!r}: expected one of {list(ROLES)}")
        if not name.strip():
            raise P2MedError("user name: must not be empty")
        token = "p2m_" + secrets.token_urlsafe(32)
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self.engine.begin() as c:
            if c.execute(sa.select(T_USERS.c.id).where(T_USERS.c.name == name)).first():
                c.execute(T_USERS.update().where(T_USERS.c.name == name).values(token_sha256=digest, role=role,
                                                                                  active=True))
            else:
                c.execute(T_USERS.insert().values(name=name, role=role, token_sha256=digest, active=True,
                                                  created_at=now()))
        return token

    def revoke_user(self, name: str) -> bool:
        with self.engine.begin() as c:
            return c.execute(T_USERS.update().where(T_USERS.c.name == name).values(active=False)).rowcount > 0

    def users(self) -> list[dict]:
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(
                sa.select(T_USERS.c.id, T_USERS.c.name, T_USERS.c.role, T_USERS.c.active).order_by(T_USERS.c.id))]

    def user_for_token(self, token: str) -> dict | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self.engine.connect() as c:
            row = c.execute(sa.select(T_USERS.c.id, T_USERS.c.name, T_USERS.c.role).where(
                T_USERS.c.token_sha256 == digest, T_USERS.c.active.is_(True))).first()
        return dict(row._mapping) if row else None

    # ---------------------------------------------------------------------------------------------- studies
    def add_study(self, info: dict, images: list[tuple[dict, np.ndarray]], user_id: int) -> str:
        """``info``: modality, exam_date, age_days, uid_hash, patient_hash, source (+ extra keys kept as JSON);
        ``images``: (entry, float [S, H, W] in 0..1)."""
        h = handle("st")
        cols = {k: info.get(k) for k in ("uid_hash", "study_uid", "patient_hash", "modality", "exam_date",
                                         "age_days", "source")}
        extra = {k: v for k, v in info.items() if k not in cols}
        with self.engine.begin() as c:
            c.execute(T_STUDIES.insert().values(handle=h, n_images=len(images), created_by=user_id, created_at=now(),
                                                info=json.dumps(extra, ensure_ascii=False), **cols))
            for i, (entry, arr) in enumerate(images):
                c.execute(T_IMAGES.insert().values(study=h, idx=i, role=str(entry.get("role") or ""),
                                                   true_slices=int(entry.get("true_slices") or arr.shape[0]),
                                                   array=array_bytes(arr)))
        return h

    def _row(self, table: sa.Table, h: str, name: str, children: sa.Select) -> dict | None:
        """The row of ``table`` with handle ``h`` and, under ``name``, the rows of ``children``."""
        with self.engine.connect() as c:
            row = c.execute(sa.select(table).where(table.c.handle == h)).first()
            if row is None:
                return None
            return {**row._mapping, name: [dict(r._mapping) for r in c.execute(children)]}

    def study(self, h: str) -> dict | None:
        out = self._row(T_STUDIES, h, "images", sa.select(T_IMAGES.c.idx, T_IMAGES.c.role, T_IMAGES.c.true_slices)
                        .where(T_IMAGES.c.study == h).order_by(T_IMAGES.c.idx))
        if out is not None:
            out["info"] = json.loads(out["info"] or "{}")
        return out

    def study_arrays(self, h: str) -> list[tuple[np.ndarray, int]]:
        """[(float32 [S, H, W], true_slices)] in order."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(T_IMAGES.c.array, T_IMAGES.c.true_slices).where(T_IMAGES.c.study == h)
                             .order_by(T_IMAGES.c.idx)).all()
        return [(np.load(io.BytesIO(r.array), allow_pickle=False).astype(np.float32), r.true_slices) for r in rows]

    def studies(self, limit: int = 200) -> list[dict]:
        signed = sa.select(T_DRAFTS.c.study).where(T_DRAFTS.c.status == "signed").scalar_subquery()
        with self.engine.connect() as c:
            rows = c.execute(sa.select(T_STUDIES.c.handle, T_STUDIES.c.modality, T_STUDIES.c.exam_date,
                                       T_STUDIES.c.n_images, T_STUDIES.c.source, T_STUDIES.c.handle.in_(signed)
                                       .label("signed")).order_by(T_STUDIES.c.created_at.desc()).limit(limit)).all()
        return [dict(r._mapping) for r in rows]

    def priors(self, h: str, limit: int = 3) -> list[dict]:
        """Earlier studies of the same patient and modality with a signed report, oldest first:
        [{"study": handle, "exam_date", "age_days", "report": signed text}]."""
        s = self.study(h)
        if s is None or not s["patient_hash"]:
            return []
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(T_STUDIES.c.handle, T_STUDIES.c.exam_date, T_STUDIES.c.age_days, T_DRAFTS.c.text)
                .join(T_DRAFTS, T_DRAFTS.c.study == T_STUDIES.c.handle)
                .where(T_STUDIES.c.patient_hash == s["patient_hash"], T_STUDIES.c.modality == s["modality"],
                       T_STUDIES.c.handle != h, T_STUDIES.c.exam_date < (s["exam_date"] or ""),
                       T_DRAFTS.c.status == "signed")
                .order_by(T_STUDIES.c.exam_date.desc(), T_DRAFTS.c.signed_at.desc())).all()
        seen: dict[str, dict] = {}
        for r in rows:
            seen.setdefault(r.handle, {"study": r.handle, "exam_date": r.exam_date, "age_days": r.age_days,
                                       "report": r.text})
        return list(reversed(list(seen.values())[:limit]))

    # ------------------------------------------------------------------------------------------------ drafts
    def add_draft(self, study: str | None, task: str, lang: str, prompt: str, text: str, model: str, adapter: str,
                  user_id: int) -> str:
        h = handle("dr")
        with self.engine.begin() as c:
            c.execute(T_DRAFTS.insert().values(handle=h, study=study, task=task, lang=lang, prompt=prompt,
                                               draft_text=text, text=text, status="draft", model=model,
                                               adapter=adapter, created_by=user_id, created_at=now()))
        return h

    def draft(self, h: str) -> dict | None:
        return self._row(T_DRAFTS, h, "edits", sa.select(T_EDITS.c.user_id, T_EDITS.c.text, T_EDITS.c.at)
                         .where(T_EDITS.c.draft == h).order_by(T_EDITS.c.id))

    def edit_draft(self, h: str, text: str, user_id: int) -> dict:
        """Keep the clinician's edit; a signed draft cannot change (an error)."""
        with self.engine.begin() as c:
            row = c.execute(sa.select(T_DRAFTS.c.status).where(T_DRAFTS.c.handle == h).with_for_update()).first()
            if row is None:
                raise KeyError(h)
            if row.status == "signed":
                raise P2MedError("draft: already signed off; it cannot be edited")
            c.execute(T_EDITS.insert().values(draft=h, user_id=user_id, text=text, at=now()))
            c.execute(T_DRAFTS.update().where(T_DRAFTS.c.handle == h).values(text=text, status="edited"))
        return self.draft(h)

    def sign_draft(self, h: str, user_id: int) -> dict:
        with self.engine.begin() as c:
            row = c.execute(sa.select(T_DRAFTS.c.status, T_DRAFTS.c.draft_text, T_DRAFTS.c.text)
                            .where(T_DRAFTS.c.handle == h).with_for_update()).first()
            if row is None:
                raise KeyError(h)
            if row.status == "signed":
                raise P2MedError("draft: already signed off")
            dist = edit_distance(row.draft_text or "", row.text or "") / max(1, len(row.draft_text or ""),
                                                                              len(row.text or ""))
            c.execute(T_DRAFTS.update().where(T_DRAFTS.c.handle == h).values(
                status="signed", signed_by=user_id, signed_at=now(), edit_distance=dist))
        return self.draft(h)

    def quality(self) -> dict:
        """The running quality figure: signed drafts and their mean normalised draft-to-signed edit distance."""
        with self.engine.connect() as c:
            n, mean = c.execute(sa.select(sa.func.count(T_DRAFTS.c.handle), sa.func.avg(T_DRAFTS.c.edit_distance))
                                .where(T_DRAFTS.c.status == "signed")).one()
        return {"signed": int(n), "mean_edit_distance": None if mean is None else float(mean)}

    # ------------------------------------------------------------------------------------------------- audit
    def audit(self, user_id: int | None, action: str, outcome: str, *, study_hash: str | None = None,
              handle: str | None = None, model: str = "", adapter: str = "", latency_ms: float | None = None) -> None:
        with self.engine.begin() as c:
            c.execute(T_AUDIT.insert().values(at=now(), user_id=user_id, action=action, study_hash=study_hash,
                                              handle=handle, model=model, adapter=adapter, latency_ms=latency_ms,
                                              outcome=outcome[:200]))

    def audit_rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(sa.select(T_AUDIT).order_by(T_AUDIT.c.id))]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()
