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
import os
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest

from strangler.gateways.nginx_plane import (
    ConfigurationRefused,
    NginxNotInstalled,
    NginxPlane,
    find_nginx,
)
from strangler_proxy.table import parse_table
from tests.gateways.conftest import PlaneFactory
from tests.proxy.conftest import Upstream
from tests.support.closed_loop import ClosedLoop, Request

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


def _policies(plane: NginxPlane) -> set[int]:
    master = psutil.Process(plane.pid)
    return {os.sched_getscheduler(process.pid) for process in [master, *master.children()]}


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux's")
def test_nginx_yields_the_cpu_to_the_applications_unless_told_otherwise(
    plane_factory: PlaneFactory, monolith: Upstream, users: Upstream, python_proxy: Upstream,
) -> None:  # fmt: skip
    upstreams = {"monolith": monolith.url, "users": users.url}
    batch = plane_factory(AT_REST.replace("{mode}", "monolith"), upstreams, python_proxy.url)
    assert _policies(batch) == {os.SCHED_BATCH}
    batch.reload(table("service"))  # the new workers are forked by the master: they inherit it
    assert _policies(batch) == {os.SCHED_BATCH}
    normal = plane_factory(
        AT_REST.replace("{mode}", "monolith"), upstreams, python_proxy.url, cpu_policy="normal"
    )
    assert _policies(normal) == {os.SCHED_OTHER}


def _request_id(number: int, count: int) -> str:
    return f"load-{number}-{count}"


def reader_and_writer(base_url: str) -> Request:
    """Odd workers write, even ones read, each request with its own id."""

    def request(client: httpx.Client, number: int, count: int) -> httpx.Response:
        headers = {"X-Request-ID": _request_id(number, count)}
        if number % 2 == 1:
            return client.post(f"{base_url}/api/users", json={}, headers=headers)
        return client.get(f"{base_url}/api/users/7", headers=headers)

    return request


def answered_by(answer: httpx.Response) -> str:
    if answer.status_code != 200:
        return f"failed: {answer.status_code} {answer.text[:200]}"
    return str(answer.json()["answered_by"])


@pytest.mark.slow
def test_no_request_fails_or_repeats_across_repeated_reloads_under_load(
    plane_factory: PlaneFactory, monolith: Upstream, users: Upstream, python_proxy: Upstream,
) -> None:  # fmt: skip
    upstreams = {"monolith": monolith.url, "users": users.url}
    plane = plane_factory(AT_REST.replace("{mode}", "monolith"), upstreams, python_proxy.url)
    modes = ["service", "monolith"]
    with ClosedLoop(reader_and_writer(plane.url), answered_by, workers=6) as load:
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
    # A request sent again was never read the first time (the access log holds that claim).
    sent_ids = [_request_id(number, count) for number, count in load.sent]
    assert {request_id: logged[request_id] for request_id in sent_ids} == dict.fromkeys(sent_ids, 1)
