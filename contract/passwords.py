"""Salted password hashes (Argon2id), in one format every implementation can verify.

The hash string carries its own salt and parameters, so rows copied from the monolith to the
users service keep working, and parameters can be raised later without breaking old hashes.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    """Hash and check passwords; cost parameters come from settings (lower only in tests)."""

    def __init__(self, time_cost: int = 2, memory_cost_kib: int = 19456) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=1
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def matches(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
