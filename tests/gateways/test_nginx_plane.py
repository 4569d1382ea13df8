"""Specification of the live plane: started, reloaded with new tables under load, refused safely.

A reload returns once no old worker is left, so the new table is in force for every request
that follows. Under a steady concurrent load of reads and writes across repeated reloads, no
request fails and none is served twice: nginx closes kept-alive connections that are idle when
it reloads (as any HTTP/1.1 server does at its keep-alive timeout), and a request the client had
just sent on such a connection was never read, so the client sends it again on a new connection
(RFC 9112, 9.3.1: what browsers and HTTP libraries do; the close is a reset when the request's
bytes were still unread); the access log shows each request served exactly once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from strangler.gateways.nginx_plane import ConfigurationRefused, NginxNotInstalled, find_nginx
from strangler_proxy.table import parse_table
from tests.gateways.conftest import PlaneFactory
from tests.proxy.conftest import Upstream

AT_REST = """
[[routes]]
name = "users.get_user"
methods = ["GET"]
path = "/api/users/{user_id}"
context = "users"
mode = "{mode}"

[[routes]]
name = "users.sign_up"
methods = ["POST"]
path = "/api/users"
context = "users"
mode = "{mode}"
"""


def table(mode: str):  # type: ignore[no-untyped-def]
    return parse_table(AT_REST.replace("{mode}", mode), known_upstreams=["users"])


def test_a_missing_nginx_is_named_with_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(NginxNotInstalled, match="apt-get install nginx"):
        find_nginx(search_path=str(tmp_path))


def test_a_reload_puts_the_new_table_in_force_before_it_returns(
    plane_factory: PlaneFactory, monolith: Upstream, users: Upstream, python_proxy: Upstream,
    client: httpx.Client,
) -> None:  # fmt: skip
    upstreams = {"monolith": monolith.url, "users": users.url}
    plane = plane_factory(AT_REST.replace("{mode}", "monolith"), upstreams, python_proxy.url)
    assert client.get(f"{plane.url}/api/users/1").json()["answered_by"] == "monolith"
    plane.reload(table("service"))
    assert client.get(f"{plane.url}/api/users/1").json()["answered_by"] == "users"
    plane.reload(table("service"), migrating=["users"])
    assert client.get(f"{plane.url}/api/users/1").json()["answered_by"] == "python-proxy"


def test_a_configuration_nginx_refuses_leaves_the_previous_one_serving(
    plane_factory: PlaneFactory, monolith: Upstream, users: Upstream, python_proxy: Upstream,
    client: httpx.Client,
) -> None:  # fmt: skip
    upstreams = {"monolith": monolith.url, "users": users.url}
    plane = plane_factory(AT_REST.replace("{mode}", "service"), upstreams, python_proxy.url)
    plane.upstreams["users"] = "http://no-such-host.invalid:1"  # nginx cannot resolve it
    with pytest.raises(ConfigurationRefused, match="host not found"):
        plane.reload(table("service"))
    assert plane.is_healthy()
    assert client.get(f"{plane.url}/api/users/1").json()["answered_by"] == "users"


class SteadyLoad:
    """Closed-loop readers and writers, each request with its own id, counting outcomes."""

    def __init__(self, base_url: str, workers: int) -> None:
        self.base_url = base_url
        self.stopping = threading.Event()
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self.resent = 0
        self.sent_ids: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(workers)]

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join()

    def _run(self, number: int) -> None:
        with httpx.Client(timeout=10) as client:
            count = 0
            while not self.stopping.is_set():
                count += 1
                request_id = f"load-{number}-{count}"
                is_write = number % 2 == 1
                outcome = self._send(client, request_id, is_write)
                with self._lock:
                    self.sent_ids.append(request_id)
                    if outcome.startswith("failed"):
                        self.failures.append(outcome)
                    else:
                        self.answers[outcome] += 1

    def _send(self, client: httpx.Client, request_id: str, is_write: bool) -> str:
        headers = {"X-Request-ID": request_id}
        for attempt in range(2):
            try:
                if is_write:
                    answer = client.post(f"{self.base_url}/api/users", json={}, headers=headers)
                else:
                    answer = client.get(f"{self.base_url}/api/users/7", headers=headers)
            except (httpx.RemoteProtocolError, httpx.ReadError) as error:
                # Closed (or reset, as data was still unread) before any byte of an answer: the
                # request was never read. The access log check below holds that claim.
                never_read = "without sending a response" in str(error) or "reset" in str(error)
                if attempt == 0 and never_read:
                    with self._lock:
                        self.resent += 1
                    continue
                return f"failed: {error!r}"
            except httpx.HTTPError as error:
                return f"failed: {error!r}"
            if answer.status_code != 200:
                return f"failed: {answer.status_code} {answer.text[:200]}"
            return str(answer.json()["answered_by"])
        return "failed: closed twice"


@pytest.mark.slow
def test_no_request_fails_or_repeats_across_repeated_reloads_under_load(
    plane_factory: PlaneFactory, monolith: Upstream, users: Upstream, python_proxy: Upstream,
) -> None:  # fmt: skip
    upstreams = {"monolith": monolith.url, "users": users.url}
    plane = plane_factory(AT_REST.replace("{mode}", "monolith"), upstreams, python_proxy.url)
    modes = ["service", "monolith"]
    with SteadyLoad(plane.url, workers=6) as load:
        for reload in range(8):
            time.sleep(0.25)
            plane.reload(table(modes[reload % 2]), migrating=["users"] if reload == 3 else [])
        time.sleep(0.25)
    assert load.failures == []
    assert set(load.answers) == {"monolith", "users", "python-proxy"}
    plane.stop()
    logged = Counter(
        json.loads(line)["request_id"]
        for line in (plane.folder / "access.log").read_text().splitlines()
    )
    assert sum(load.answers.values()) > 200
    assert {request_id: logged[request_id] for request_id in load.sent_ids} == dict.fromkeys(
        load.sent_ids, 1
    )
