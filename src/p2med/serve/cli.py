"""``p2med serve --model CKPT``: serve a checkpoint folder on 127.0.0.1 (OpenAI-compatible API + clinician page).

Trailing ``key=value`` arguments override ``configs/serve/default.yaml`` (``port=8080 db=postgresql://...``).
Users and their tokens come from ``p2med user add NAME --role clinician --db DB``. docs/serving.md has the
routes, the store and the limits.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "serve" / "default.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, type=Path, help="checkpoint folder (written by save_checkpoint)")
    p.add_argument("--config", type=Path, help="YAML config (default: configs/serve/default.yaml)")
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default 8000)")
    p.add_argument("--db", help="SQLite file or SQLAlchemy URL (default serve.db)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def load(args: argparse.Namespace):
    from ..config import load_config
    from .config import ServeConfig

    path = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    flags = [f"{k}={getattr(args, k)}" for k in ("host", "port", "db") if getattr(args, k, None) is not None]
    return load_config(ServeConfig, path, list(args.overrides or []) + flags)


def run(args: argparse.Namespace) -> int:
    from .server import run as serve

    serve(load(args), args.model)
    return 0
