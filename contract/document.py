"""The contract as a document: `docs/openapi.yaml`, read for a service to serve its part of it.

Each service serves the paths of this document that its own routes serve, as its OpenAPI
document at `/openapi.json` (and Swagger UI at `/docs`): the contract is written down once.
This module must never change the document it reads.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "openapi.yaml"
# libyaml's safe loader when PyYAML was built with it: the same document, parsed about six times
# faster (14 against 84 ms), which every service and every function's cold start pays once.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def contract_document() -> dict[str, Any]:
    """The whole contract, parsed once per process."""
    document: dict[str, Any] = yaml.load(DOCUMENT.read_text(encoding="utf-8"), Loader=LOADER)
    return document
