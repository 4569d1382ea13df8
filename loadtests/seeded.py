"""What the load scenario may count on in the seeded forum: the workspace's `load.plan_data`.

The comparison seeds every architecture with the same `strangler seed --scale S`, so users,
threads and polls 1..N exist, and each seeded user gets a bearer token signed with the system's
secret (the locustfile acts as them). This module must never send a request.
"""

from __future__ import annotations

from typing import Any

from monolith.seed import Scale
from strangler.plumbing.tokens import TokenSigner


def plan_data(scale: float, token_secret: str) -> dict[str, Any]:
    sizes = Scale.of(scale)
    signer = TokenSigner(token_secret)
    return {
        "users": sizes.users,
        "threads": sizes.threads,
        "polls": sizes.polls,
        "tokens": {str(user): signer.issue(user) for user in range(1, sizes.users + 1)},
    }
