"""The database server's processes that serve a system, so its CPU is counted as a role.

SQLite runs inside the processes that use it: its CPU is already theirs. A PostgreSQL server
runs one backend process per connection, outside every process `strangler up` supervises, and on
the forum it spends about a third of the CPU a request costs: left out, every "CPU per 1,000
requests" on PostgreSQL would be a third short and a machine whose cores were all busy would
read as idle. So the backends connected to the system's databases (found by database name in
`pg_stat_activity`, asked again every `refresh_seconds`, since pools open and close
connections) are watched like the system's own processes, under the role `database`.

This needs the server on this host and the right to read its processes (the same user as the
server, or root): `describe` says which, and the report quotes it. This module must never
change anything in the databases it looks at.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import psutil
from sqlalchemy import Engine, bindparam, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from strangler.compare.results import DATABASE_ROLE
from strangler.plumbing.database import make_engine

LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1"}
BACKENDS = text(
    "SELECT pid FROM pg_stat_activity WHERE datname IN :names AND pid <> pg_backend_pid()"
).bindparams(bindparam("names", expanding=True))


@dataclass
class DatabaseProcesses:
    """pid -> "database" for the PostgreSQL backends serving `urls` (none for SQLite)."""

    urls: Iterable[str]
    refresh_seconds: float = 2.0
    _servers: dict[str, tuple[Engine, list[str]]] = field(default_factory=dict)
    _found: dict[int, str] = field(default_factory=dict)
    _asked_at: float = float("-inf")
    _has_remote: bool = False

    def __post_init__(self) -> None:
        for url in self.urls:
            parsed = make_url(url)
            if parsed.get_backend_name() != "postgresql" or not parsed.database:
                continue
            if parsed.host not in LOCAL_HOSTS:
                self._has_remote = True
                continue
            # pg_stat_activity shows the whole server from any database: ask it through the
            # first of ours (a managed server may refuse a connection to `postgres`).
            server = parsed.set(database="").render_as_string(hide_password=False)
            if server not in self._servers:
                ours = parsed.render_as_string(hide_password=False)
                self._servers[server] = (make_engine(ours, pool_size=1, max_overflow=0), [])
            self._servers[server][1].append(parsed.database)

    def __call__(self) -> dict[int, str]:
        """The backends now (asked of the servers at most every `refresh_seconds`)."""
        if time.monotonic() - self._asked_at >= self.refresh_seconds:
            self._asked_at = time.monotonic()
            self._found = {pid: DATABASE_ROLE for pid in self._backends()}
        return self._found

    def _backends(self) -> list[int]:
        found: list[int] = []
        for engine, names in self._servers.values():
            try:
                with engine.connect() as connection:
                    found += connection.execute(BACKENDS, {"names": names}).scalars().all()
            except SQLAlchemyError:
                continue  # the server is restarting or gone: count what it spent so far
        return [pid for pid in found if _is_postgres(pid)]

    def describe(self) -> str:
        """How the database's CPU is accounted, for the report."""
        if not self._servers and not self._has_remote:
            return "inside the application's processes (SQLite)"
        if self._has_remote and not self._servers:
            return "not measured: the PostgreSQL server is not on this host"
        readable = self._readable()
        if readable is None:
            return "not measured: the PostgreSQL server could not be asked for its backends"
        if readable is False:
            return (
                "not measured: the PostgreSQL server's processes cannot be read from here (its "
                "own container, or another user: run as the server's user or as root)"
            )
        return "the PostgreSQL server's backends serving the system, as the role `database`"

    def _readable(self) -> bool | None:
        """Whether a backend's CPU can be read here: tried on this module's own connection."""
        for engine, _ in self._servers.values():
            try:
                with engine.connect() as connection:
                    pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
                    if not _is_postgres(pid):  # another PID namespace (a container)
                        return False
                    psutil.Process(pid).cpu_times()
            except psutil.Error:
                return False
            except SQLAlchemyError:
                return None
            return True
        return None

    def close(self) -> None:
        for engine, _ in self._servers.values():
            engine.dispose()


def _is_postgres(pid: int) -> bool:
    """Whether `pid` is a PostgreSQL process on this host (not a pid of another namespace)."""
    try:
        return psutil.Process(pid).name() in ("postgres", "postmaster")
    except psutil.Error:
        return False
