"""The de-identification key: stable keyed pseudonyms (HMAC-SHA256), per-patient date shifts and UID remapping.

Everything that links an output back to the hospital is a function of this secret, so the same key gives the
same pseudonyms on every run (new exams of a patient join the patient's earlier pseudonym) and nobody without
the key can recompute them. The key never leaves this object: it is not logged, not written, not put in an
exception text. What this module does not know: which value is an identifier (see ``profile`` and ``text``).

Create a key (README "De-identification"): ``python -c "import secrets; print(secrets.token_hex(32))" > deid.key``
then ``chmod 600 deid.key``. Example: ``DeidKey.load("deid.key").pseudonym("patient", "10012345")`` ->
``"P3f9a0c1d2e4b5a6c"``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import uuid
from pathlib import Path

from ..common.errors import P2MedError

MIN_KEY_BYTES = 32
# kind of id -> first letter of its pseudonym (paths get F, UIDs use the 2.25 UUID arc)
PREFIX = {"patient": "P", "visit": "V", "exam": "E", "record": "R", "path": "F"}


class KeyFileError(P2MedError, ValueError):
    """The key file is missing, too short or readable by others (message names the file, never the key)."""


class DeidKey:
    """A secret of at least 32 bytes; derives every pseudonym, shift and UID of a de-identified export."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_KEY_BYTES:
            raise KeyFileError(f"the de-identification key must hold at least {MIN_KEY_BYTES} bytes, got "
                            f"{len(secret)}; create one with: python -c \"import secrets; "
                            f"print(secrets.token_hex(32))\" > deid.key")
        self._secret = secret

    def __repr__(self) -> str:  # never show the secret, not even in a traceback's locals
        return f"DeidKey(id={self.key_id})"

    def __reduce__(self):  # pickled only to hand it to our own worker processes
        return (DeidKey, (self._secret,))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DeidKey":
        """Read a key file: its content (surrounding whitespace stripped) is the secret."""
        path = Path(path)
        if not path.is_file():
            raise KeyFileError(f"key file {path} does not exist; create one with: python -c \"import secrets; "
                            f"print(secrets.token_hex(32))\" > {path} && chmod 600 {path}")
        mode = path.stat().st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(f"key file {path} is readable by other users (mode {stat.filemode(mode)}); "
                            f"run: chmod 600 {path}")
        secret = path.read_bytes().strip()
        if len(secret) < MIN_KEY_BYTES:
            raise KeyFileError(f"key file {path} holds {len(secret)} bytes, at least {MIN_KEY_BYTES} are needed")
        return cls(secret)

    def digest(self, purpose: str, value: str) -> bytes:
        return hmac.new(self._secret, f"{purpose}\x1f{value}".encode("utf-8"), hashlib.sha256).digest()

    @property
    def key_id(self) -> str:
        """A short fingerprint: two exports with the same key_id share pseudonyms. Reveals nothing of the key."""
        return self.digest("key-id", "p2med-deid").hex()[:12]

    def pseudonym(self, kind: str, value: str, length: int = 16) -> str:
        """``P`` / ``V`` / ``E`` / ``R`` / ``F`` + ``length`` hex characters of HMAC(kind, value)."""
        return PREFIX[kind] + self.digest(kind, value).hex()[:length]

    def shift_days(self, patient_id: str, lo: int, hi: int) -> int:
        """The patient's date shift in days, in ``[lo, hi]`` (both >= 1: never zero, always forward)."""
        if not 1 <= lo <= hi:
            raise ValueError(f"shift range must satisfy 1 <= lo <= hi, got [{lo}, {hi}]")
        n = int.from_bytes(self.digest("shift", patient_id)[:8], "big")
        return lo + n % (hi - lo + 1)

    def uid(self, value: str) -> str:
        """A UID remapped under the 2.25 (UUID) arc: same input, same output; references stay valid."""
        u = uuid.UUID(bytes=self.digest("uid", value.strip())[:16], version=4)
        return f"2.25.{u.int}"
