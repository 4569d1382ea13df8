"""Fixtures of the proxy suite: real upstream processes and real proxy processes on loopback.

Upstreams are `tests/proxy/upstream_app.py` processes that say who answered; the proxy runs
under uvicorn exactly as `strangler up` runs it, configured only through `PROXY_*` variables.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from strangler.runtime.processes import ManagedProcess, free_port, start
from tests.support.servers import proxy_upstreams

HERE = Path(__file__).parent
ADMIN_TOKEN = "admin-token-for-tests-0123456789"
TOKEN_SECRET = "test-signing-key-not-a-secret-0123456789"


@dataclass
class Upstream:
    name: str
    url: str
    process: ManagedProcess

    def kill(self) -> None:
        self.process.stop(grace=0.1)


@dataclass
class RunningProxy:
    url: str
    table_path: Path
    audit_path: Path
    process: ManagedProcess
    admin_url: str | None = None  # the admin port's, when the proxy has one

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.admin_url or self.url}/_admin",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Admin-Actor": "pytest"},
            timeout=10,
        )

    def put_table(self, text: str, reason: str = "test setup") -> httpx.Response:
        with self.admin() as admin:
            return admin.put("/table", content=text, params={"reason": reason})


def start_upstream(name: str, tmp_path: Path) -> Upstream:
    port = free_port()
    process = start(
        f"upstream-{name}",
        [sys.executable, str(HERE / "upstream_app.py"), str(port), name],
        {},
        health_url=f"http://127.0.0.1:{port}/healthz",
        log_path=tmp_path / "logs" / f"upstream-{name}-{port}.log",
    )
    process.wait_healthy()
    return Upstream(name, f"http://127.0.0.1:{port}", process)


def start_proxy(
    tmp_path: Path, table_text: str, upstreams: dict[str, str], **extra_env: str
) -> RunningProxy:
    port = free_port()
    table_path = tmp_path / f"table-{port}.toml"
    table_path.write_text(table_text)
    audit_path = tmp_path / f"audit-{port}.jsonl"
    env = {
        "PROXY_ROUTE_TABLE_PATH": str(table_path),
        "PROXY_AUDIT_LOG_PATH": str(audit_path),
        "PROXY_ADMIN_TOKEN": ADMIN_TOKEN,
        "STRANGLER_TOKEN_SECRET": TOKEN_SECRET,
        "PROXY_TABLE_WATCH_SECONDS": "0",
        "PROXY_ANALYSIS_INTERVAL_SECONDS": "0",
        "PROXY_ACCESS_LOG": "false",
        **proxy_upstreams(upstreams),
        **extra_env,
    }
    argv = [sys.executable, "-m", "strangler_proxy", "--host", "127.0.0.1", "--port", str(port)]
    process = start(
        "proxy", argv, env, health_url=f"http://127.0.0.1:{port}/healthz",
        log_path=tmp_path / "logs" / f"proxy-{port}.log",
    )  # fmt: skip
    process.wait_healthy()
    admin_port = env.get("PROXY_ADMIN_PORT")
    admin_url = f"http://127.0.0.1:{admin_port}" if admin_port else None
    return RunningProxy(f"http://127.0.0.1:{port}", table_path, audit_path, process, admin_url)


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proxy")


@pytest.fixture(scope="module")
def monolith(module_dir: Path) -> Iterator[Upstream]:
    upstream = start_upstream("monolith", module_dir)
    yield upstream
    upstream.kill()


@pytest.fixture(scope="module")
def users(module_dir: Path) -> Iterator[Upstream]:
    upstream = start_upstream("users", module_dir)
    yield upstream
    upstream.kill()


@pytest.fixture
def proxy_factory(tmp_path: Path) -> Iterator[Callable[..., RunningProxy]]:
    """Start proxies with a given table for one test; all are stopped afterwards."""
    started: list[RunningProxy] = []

    def make(table_text: str, upstreams: dict[str, str], **extra_env: str) -> RunningProxy:
        proxy = start_proxy(tmp_path, table_text, upstreams, **extra_env)
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.process.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15) as http:
        yield http
