"""Optional heavy dependencies, imported where used, failing with the extra to install.

Example: ``torch = require("torch", "train")`` raises ``MissingExtra`` naming ``pip install 'p2med[train]'``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import P2MedError


class MissingExtra(P2MedError, ImportError):
    pass


def require(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(f"{module} is needed here but is not installed: pip install 'p2med[{extra}]' "
                           f"({exc})") from exc
