"""The object an import path names (`package.module:attribute.attribute`).

One rule for every place the toolkit takes code by name: a workspace's apps and hooks, the
servers' entry points, the functions a proxy route or the stream poller invokes. This module
must never change `sys.path`: making a folder importable is the caller's decision.
"""

from __future__ import annotations

import importlib
from typing import Any


def resolve(import_path: str) -> Any:
    """The object `module:attribute.attribute` names (the module imported if need be)."""
    module_name, _, attribute = import_path.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found
