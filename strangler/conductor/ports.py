"""The conductor's collaborators, as the interfaces it needs of them.

The data plane is the proxy's admin API (`strangler_proxy.client.ProxyAdmin` implements it);
the runtime is the supervisor of the running system (`strangler.conductor.runtime` reads its
run record). Logic tests stand small in-memory fakes behind these; end-to-end tests run the real
ones. This module must never do anything itself.
"""

from __future__ import annotations

from typing import Any, Protocol

from strangler_proxy.table import DataOwner


class DataPlane(Protocol):
    """What the conductor asks of the proxy's admin API."""

    def routes(self) -> dict[str, Any]: ...

    def route_list(self) -> list[dict[str, Any]]: ...

    def change_routes(self, changes: dict[str, dict[str, Any]], reason: str) -> None: ...

    def replace_table(self, text: str, reason: str) -> int: ...

    def shadow(self) -> dict[str, dict[str, Any]]: ...

    def shadow_samples(self) -> list[dict[str, Any]]: ...

    def run_analysis(self) -> None: ...

    def decisions(self, since: str) -> list[dict[str, Any]]: ...

    def owner_of(self, context: str) -> DataOwner | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> DataPlane: ...

    def __exit__(self, *exc: object) -> None: ...


class Runtime(Protocol):
    """What the conductor asks of the supervisor that runs the system."""

    @property
    def public_url(self) -> str: ...

    @property
    def admin_url(self) -> str: ...

    def url_of(self, name: str) -> str: ...

    def health_url_of(self, name: str) -> str: ...

    def log_of(self, name: str) -> str: ...

    def settle(self, revision: int, timeout: float) -> None:
        """Wait until the supervisor runs what state `revision` asks for, every process
        healthy; raise GateFailed with what is not."""
        ...

    def await_plane(self, revision: int, timeout: float) -> None:
        """Wait until the data plane in front of the Python proxy serves a configuration
        rendered from state `revision` or later (at once when the proxy itself is in front);
        raise SystemGone saying what it applied."""
        ...
