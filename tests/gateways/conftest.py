"""Fixtures of the gateways suite: a real nginx on loopback ports in front of real upstreams.

Upstreams are `tests/proxy/upstream_app.py` processes that say who answered and echo what
arrived; one of them stands in for the Python proxy, so a test sees which requests nginx passes
on. nginx runs as `NginxPlane` runs it for `strangler up`, in a temporary prefix. Tests that need
nginx are skipped, with the reason, where it is not installed (`.ci/run` installs it).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from strangler.gateways.nginx_plane import NginxNotInstalled, NginxPlane, find_nginx
from strangler.gateways.settings import GatewaySettings
from strangler.runtime.processes import free_port
from strangler_proxy.table import parse_table
from tests.proxy.conftest import Upstream, start_upstream

CONTEXTS = ("users", "forum", "polls", "search")
PlaneFactory = Callable[..., NginxPlane]


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    try:
        return find_nginx()
    except NginxNotInstalled as missing:
        pytest.skip(f"{missing} (.ci/run installs it)")


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateways")


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


@pytest.fixture(scope="module")
def python_proxy(module_dir: Path) -> Iterator[Upstream]:
    """An echoing stand-in for the Python proxy: it names itself in every answer."""
    upstream = start_upstream("python-proxy", module_dir)
    yield upstream
    upstream.kill()


def dead_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


def start_plane(
    folder: Path,
    binary: str,
    table_text: str,
    upstreams: dict[str, str],
    proxy_url: str,
    migrating: tuple[str, ...] = (),
    **settings: object,
) -> NginxPlane:
    table = parse_table(table_text, known_upstreams=upstreams)
    plane = NginxPlane(
        folder,
        upstreams,
        proxy_url,
        GatewaySettings.model_validate({"listen_port": free_port(), **settings}),
        binary,
    )
    plane.start(table, migrating)
    return plane


@pytest.fixture
def plane_factory(tmp_path: Path, nginx_binary: str) -> Iterator[PlaneFactory]:
    """Start planes for one test; every one is stopped afterwards."""
    started: list[NginxPlane] = []

    def make(
        table_text: str,
        upstreams: dict[str, str],
        proxy_url: str,
        migrating: tuple[str, ...] = (),
        **settings: object,
    ) -> NginxPlane:
        folder = tmp_path / f"plane-{len(started)}"
        plane = start_plane(
            folder, nginx_binary, table_text, upstreams, proxy_url, migrating, **settings
        )
        started.append(plane)
        return plane

    yield make
    for plane in started:
        plane.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15) as http:
        yield http


def raw_request(base_url: str, target: bytes, headers: bytes = b"") -> tuple[int, bytes]:
    """Send a request line exactly as given (httpx would normalise it); status and raw answer."""
    address = urlsplit(base_url)
    assert address.hostname is not None and address.port is not None
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + headers + b"Connection: close\r\n\r\n"
        )
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    return int(answer.split(b" ", 2)[1]), answer


def body_of(answer: bytes) -> bytes:
    return answer.split(b"\r\n\r\n", 1)[1]
