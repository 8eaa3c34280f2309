"""The server's settings: where it listens, its store, its limits and the PACS it may talk to.

It does not know the model (``p2med serve --model CKPT`` gives that) nor any user: users and their tokens
live in the store (``p2med user add``). Example: ``load_config(ServeConfig, "configs/serve/default.yaml",
["port=8080", "max_queue=16"])``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import check


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"          # bind address; anything but loopback exposes patient data to the network
    port: int = 8000                 # TCP port
    db: str = "serve.db"             # SQLite file path, or an SQLAlchemy URL (postgresql://user@host/db)
    max_body_mb: float = 64.0        # request bodies above this are refused (413)
    max_queue: int = 32              # requests waiting for the model beyond this are refused (503)
    max_batch: int = 8               # requests decoded together in one batch
    batch_wait_ms: float = 5.0       # how long the engine waits for more requests to fill a batch
    request_timeout_s: float = 120.0  # a request not finished by then fails (504)
    max_new_tokens: int = 512        # default and upper bound of tokens per answer
    shutdown_grace_s: float = 30.0   # on SIGTERM in-flight requests get this long to finish, then fail
    threads: int = 0                 # torch threads (0: torch's default)
    quantize: str = "none"           # "int8": LLM weights int8 (about 2-3x faster decode on CPU, answers may differ)
    pacs_url: str = ""               # DICOMweb root of the PACS (QIDO/WADO/STOW-RS); empty: PACS routes off
    pacs_user: str = ""              # PACS basic-auth user
    pacs_password_file: str = ""     # file holding the PACS password (never in the config or the logs)

    def __post_init__(self) -> None:
        check(0 < self.port < 65536, "port", f"must be 1..65535, got {self.port}")
        check(self.max_body_mb > 0, "max_body_mb", f"must be > 0, got {self.max_body_mb}")
        check(self.max_queue >= 1, "max_queue", f"must be >= 1, got {self.max_queue}")
        check(self.max_batch >= 1, "max_batch", f"must be >= 1, got {self.max_batch}")
        check(self.batch_wait_ms >= 0, "batch_wait_ms", f"must be >= 0, got {self.batch_wait_ms}")
        check(self.request_timeout_s > 0, "request_timeout_s", f"must be > 0, got {self.request_timeout_s}")
        check(self.max_new_tokens >= 1, "max_new_tokens", f"must be >= 1, got {self.max_new_tokens}")
        check(self.shutdown_grace_s >= 0, "shutdown_grace_s", f"must be >= 0, got {self.shutdown_grace_s}")
        check(self.threads >= 0, "threads", f"must be >= 0, got {self.threads}")
        check(self.quantize in ("none", "int8"), "quantize", f"must be none or int8, got {self.quantize!r}")
        check(bool(self.db), "db", "must name an SQLite file or an SQLAlchemy URL")
        check(not self.pacs_url or self.pacs_url.startswith(("http://", "https://")), "pacs_url",
              "must be an http(s) DICOMweb root or empty")
