"""``p2med user add NAME --role clinician|admin --db DB``: create a server user and print its API token once.

``p2med user list`` shows users (never tokens: only their sha256 is stored); ``p2med user revoke NAME`` disables
one; ``add`` on an existing name gives it a new token (the old one stops working).
"""

from __future__ import annotations

import argparse

from .cli import DEFAULT_CONFIG


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("add", "list", "revoke"), help="what to do")
    p.add_argument("name", nargs="?", help="user name (add, revoke)")
    p.add_argument("--role", default="clinician", choices=("clinician", "admin"),
                   help="clinician (can sign off) or admin (default clinician)")
    p.add_argument("--db", help=f"SQLite file or SQLAlchemy URL (default: db of {DEFAULT_CONFIG.name})")


def run(args: argparse.Namespace) -> int:
    from ..common.errors import P2MedError
    from ..config import load_config
    from .config import ServeConfig
    from .store import Store

    cfg = load_config(ServeConfig, DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None,
                      [f"db={args.db}"] if args.db else [])
    store = Store(cfg.db)
    if args.action == "list":
        for u in store.users():
            print(f"{u['name']}\t{u['role']}\t{'active' if u['active'] else 'revoked'}")
        return 0
    if not args.name:
        raise P2MedError(f"p2med user {args.action}: a user NAME is needed")
    if args.action == "revoke":
        if not store.revoke_user(args.name):
            raise P2MedError(f"no user named {args.name!r} in {store.describe()}")
        print(f"revoked {args.name}")
        return 0
    print(store.add_user(args.name, args.role))
    return 0
