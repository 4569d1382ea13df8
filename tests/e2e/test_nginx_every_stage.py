"""The contract, the path rules and the faults hold through the nginx data plane at every stage.

One `strangler up --data-plane nginx` walks the migration once, stage 0 to 5 (`strangler stage
goto N`: the real extractions, with their gates and cutovers, each a context moving through the
Python proxy behind nginx); a module-scoped fixture moves it forward, so pytest runs every test
of a stage before the next stage begins. At each stage, through nginx's public port:

- the contract suite (tests/contract, against the public port as `STRANGLER_CONTRACT_URL`):
  whole at stage 0, then the part of the context each stage moves (`CONTRACT_PART`);
- the path rules of the proxy's bypass suite, on the route whose side the stage moved: every
  spelling (double and leading slashes, dot segments plain and encoded, encoded letters, case,
  a trailing slash) reaches the side the durable table names with the canonical path, a
  monolith path cannot pass for it, and every ambiguous target (encoded slashes, backslashes,
  encoded controls, climbing above the root...) is refused by nginx with a 400 problem carrying
  the request id, forwarded to nobody;
- client-sent forwarding headers are overwritten, and the Python proxy behind nginx sees each
  caller's own address: two anonymous callers bound to 127.0.0.2 and 127.0.0.3 keep stable,
  independent canary sides on that route (stages 1 to 4, where both sides run);
- the faults: the route's upstream hung (its process group stopped) gives a 504 problem within
  the route's read timeout, killed (its process group) a 502 problem naming it, both with the
  request id; nginx's own errors (405, 413, 414) are problems with the request id.

Which side answered is read from nginx's JSON access log, what an upstream received from its own
request log, both by request id. Skipped where nginx is not installed (`.ci/run` installs it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from strangler.gateways.nginx_control import nginx_targets
from strangler.gateways.targets import answering_upstream
from strangler.state import StateFile
from strangler_proxy.canary import bucket_of
from strangler_proxy.paths import canonicalise
from strangler_proxy.table import DataOwner, Fallback, Mode, Route, RouteTable
from tests.e2e.test_crash_safety import System
from tests.e2e.test_nginx_data_plane import admin, wait_applied
from tests.e2e.test_nginx_live_paths import nginx_system, upstream_line
from tests.gateways.conftest import body_of, raw_request
from tests.gateways.test_nginx_paths import AMBIGUOUS_TARGETS
from tests.support.command_line import environment

pytestmark = pytest.mark.slow

STAGES = [0, 1, 2, 3, 4, 5]
# At each stage, a read of the context it moved (users stands for stage 0, and for stage 5,
# where the monolith stops): the route's name and a path the seed answers.
PROBES = {
    0: ("users.get_user", "/api/users/1"),
    1: ("users.get_user", "/api/users/1"),
    2: ("polls.get_poll", "/api/polls/1"),
    3: ("forum.get_thread", "/api/threads/1"),
    4: ("search.search", "/api/search"),
    5: ("users.get_user", "/api/users/1"),
}
# The contract suite: whole at stage 0, then the part of the context each stage moves (at
# stage 5, where the monolith stops, what every context shares: unknown paths, errors). The
# whole suite at every stage would cost CI minutes it does not have.
CONTRACT_PART = {0: "", 1: "users", 2: "polls", 3: "forum", 4: "search", 5: "operations"}
CALLERS = ("127.0.0.2", "127.0.0.3")  # two anonymous callers, told apart by address alone
FORGED = "6.6.6.6"
UPSTREAMS = {"monolith", "users", "polls", "forum", "search", "python-proxy"}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    yield from nginx_system(tmp_path_factory.mktemp("nginx-stages"))


@pytest.fixture(scope="module", params=STAGES)
def stage(request: pytest.FixtureRequest, system: System) -> int:
    """The system at this stage (moved forward from the one before: never back)."""
    wanted: int = request.param
    if durable_stage(system) != wanted:
        moved = subprocess.run(
            [sys.executable, "-m", "strangler", "stage", "goto", str(wanted)],
            cwd=system.folder, env=system_environment(system), capture_output=True,
            text=True, timeout=600,
        )  # fmt: skip
        assert moved.returncode == 0, moved.stdout[-3000:] + moved.stderr[-2000:]
    assert durable_stage(system) == wanted
    state = StateFile(home(system) / "migration.json").read()
    wait_applied(system, state.revision)
    return wanted


def home(system: System) -> Path:
    return system.folder / ".strangler"


def system_environment(system: System) -> dict[str, str]:
    return environment(system.folder, system.env)


def durable_stage(system: System) -> int:
    return StateFile(home(system) / "migration.json").read().stage


def route_now(system: System, name: str) -> Route:
    state = StateFile(home(system) / "migration.json").read()
    found = RouteTable.model_validate(state.routes).route(name)
    assert found is not None, name
    return found


def fresh_id(kind: str) -> str:
    return f"{kind}-{time.monotonic_ns()}"


def targets_of(system: System, request_ids: list[str], patience: float = 10) -> dict[str, str]:
    return nginx_targets(home(system) / "nginx", request_ids, patience=patience)


def spellings(path: str) -> list[bytes]:
    """Spellings of `/api/<rest>` that the proxy's path rules give the same route."""
    rest = path.removeprefix("/api/")
    return [
        spelled.encode()
        for spelled in (
            path, f"/api//{rest}", f"//api/{rest}", f"/api/{rest}/", f"/api/./{rest}",
            f"/api/x/../{rest}", f"/api/%2e/{rest}", f"/api/x/%2E%2E/{rest}",
            f"/api/x/.%2e/{rest}", f"/%61pi/{rest}", f"/API/{rest.upper()}",
        )
    ]  # fmt: skip


def test_the_contract_holds_through_nginx(system: System, stage: int) -> None:
    env = {
        **os.environ,
        "STRANGLER_CONTRACT_URL": system.url,
        "STRANGLER_CONTRACT_TOKEN_SECRET": (home(system) / "token-secret").read_text().strip(),
    }
    part = ["-m", CONTRACT_PART[stage]] if CONTRACT_PART[stage] else []
    suite = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/contract", "-q", "-p", "no:cacheprovider",
         "--ignore=tests/contract/test_schemathesis.py", "-k", "monolith-sqlite", *part, "-x"],
        cwd=Path(__file__).parents[2], env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert suite.returncode == 0, f"stage {stage}:\n{suite.stdout[-4000:]}{suite.stderr[-2000:]}"
    part_name = CONTRACT_PART[stage] or "whole"
    print(f"stage {stage}, contract {part_name}: {suite.stdout.splitlines()[-1]}")


def test_every_spelling_reaches_the_side_the_table_names_canonical(
    system: System, stage: int
) -> None:
    name, path = PROBES[stage]
    side = answering_upstream(route_now(system, name))
    query = "?q=the" if name == "search.search" else ""
    sent: dict[str, bytes] = {}
    for raw in spellings(path):
        request_id = fresh_id("spelling")
        status, answer = raw_request(system.url, raw + query.encode(),
                                     f"X-Request-ID: {request_id}\r\n".encode())  # fmt: skip
        assert status in (200, 404), answer[:500]  # the upstream's answer, whatever the case
        sent[request_id] = raw
    found = targets_of(system, list(sent))
    assert found == dict.fromkeys(sent, side), f"stage {stage}: {found}"
    for request_id, raw in sent.items():
        assert upstream_line(system, side, request_id)["path"] == canonicalise(raw).decoded


def test_a_monolith_path_cannot_pass_for_the_moved_route(system: System, stage: int) -> None:
    if stage == 5:
        pytest.skip("at stage 5 no path reaches the monolith")
    request_id = fresh_id("disguised")
    raw_request(system.url, b"/api//users/1/posts", f"X-Request-ID: {request_id}\r\n".encode())
    assert targets_of(system, [request_id]) == {request_id: "monolith"}


def test_ambiguous_targets_are_refused_by_nginx_with_a_problem_and_the_request_id(
    system: System, stage: int
) -> None:
    kept = []
    for raw in AMBIGUOUS_TARGETS:
        request_id = fresh_id("refused")
        status, answer = raw_request(system.url, raw, f"X-Request-ID: {request_id}\r\n".encode())
        assert status == 400, (raw, answer[:300])
        assert b"content-type: application/problem+json" in answer.split(b"\r\n\r\n")[0].lower()
        problem = json.loads(body_of(answer))
        assert problem["status"] == 400 and len(problem["request_id"]) >= 16
        # A request line nginx's own parser refuses gets a new id (it has not read headers).
        assert problem["request_id"] in (request_id, answer_id(answer))
        kept.append(problem["request_id"])
    found = targets_of(system, kept, patience=2)
    assert not set(found.values()) & UPSTREAMS, f"forwarded: {found}"  # nginx answered


def answer_id(answer: bytes) -> str:
    for line in answer.split(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-request-id":
            return value.strip().decode()
    return ""


def canary_percent() -> float:
    """A percentage that puts the first caller on the service and the second on the monolith
    (or the reverse): between their buckets."""
    low, high = sorted(bucket_of(f"address:{caller}") for caller in CALLERS)
    assert low < high
    return (low + high) // 2 / 100


def sides_through(url: str, caller: str, path: str, times: int) -> list[str]:
    """Request ids of `times` anonymous reads of `path` from `caller`, each with a forged
    forwarding chain and real-IP header."""
    ids = []
    transport = httpx.HTTPTransport(local_address=caller)
    with httpx.Client(transport=transport, timeout=15) as client:
        for _ in range(times):
            request_id = fresh_id("caller")
            answer = client.get(url + path, headers={
                "X-Request-ID": request_id, "X-Forwarded-For": FORGED, "X-Real-IP": FORGED,
            })  # fmt: skip
            assert answer.status_code == 200, answer.text
            ids.append(request_id)
    return ids


def test_each_caller_keeps_its_own_canary_side_and_its_forged_address_is_overwritten(
    system: System, stage: int
) -> None:
    if stage in (0, 5):
        pytest.skip("a canary needs both sides running: stages 1 to 4")
    name, path = PROBES[stage]
    path += "?q=the" if name == "search.search" else ""
    before = route_now(system, name)
    with admin(system) as proxy:
        proxy.change_routes({name: {"mode": "canary", "canary_percent": canary_percent()}},
                            "test: a canary between two callers")  # fmt: skip
    try:
        wait_applied(system, StateFile(home(system) / "migration.json").read().revision)
        sides = {}
        for caller in CALLERS:
            ids = sides_through(system.url, caller, path, times=5)
            lines = [upstream_line(system, "proxy", request_id) for request_id in ids]
            assert {line["client"] for line in lines} == {caller}  # not nginx's, not forged
            sides[caller] = {str(line["target"]) for line in lines}
            assert len(sides[caller]) == 1, f"{caller} moved between sides: {sides[caller]}"
        assert sides[CALLERS[0]] != sides[CALLERS[1]], sides
        # Straight to the Python proxy from an untrusted peer, a forged chain counts for nothing:
        # the caller is its own address, and lands where it landed through nginx.
        record = json.loads((home(system) / "run.json").read_text())
        direct = f"http://127.0.0.1:{record['ports']['proxy']}"
        ids = sides_through(direct, CALLERS[0], path, times=3)
        lines = [upstream_line(system, "proxy", request_id) for request_id in ids]
        assert {line["client"] for line in lines} == {CALLERS[0]}
        assert {str(line["target"]) for line in lines} == sides[CALLERS[0]]
    finally:
        with admin(system) as proxy:
            proxy.change_routes(
                {name: {"mode": before.mode.value, "canary_percent": before.canary_percent}},
                "test: the canary ends",
            )
        wait_applied(system, StateFile(home(system) / "migration.json").read().revision)


def assert_problem(answer: httpx.Response, status: int, request_id: str) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"] == request_id
    problem: dict[str, object] = answer.json()
    assert problem["status"] == status and problem["request_id"] == request_id
    return problem


def process_group(system: System, name: str) -> int:
    return os.getpgid(system.pid_of(name))


def test_a_hung_upstream_gives_a_504_problem_within_the_route_s_read_timeout(
    system: System, stage: int
) -> None:
    name, path = PROBES[stage]
    path += "?q=the" if name == "search.search" else ""
    upstream = answering_upstream(route_now(system, name))
    with admin(system) as proxy:
        proxy.change_routes({name: {"read_timeout": 1}}, "test: a short read timeout")
    group = process_group(system, upstream)
    try:
        wait_applied(system, StateFile(home(system) / "migration.json").read().revision)
        os.killpg(group, signal.SIGSTOP)  # accepts connections (the kernel does), answers none
        request_id = fresh_id("hung")
        answer = httpx.get(system.url + path, headers={"X-Request-ID": request_id}, timeout=30)
        problem = assert_problem(answer, 504, request_id)
        assert f"{upstream} upstream" in str(problem["detail"])
    finally:
        os.killpg(group, signal.SIGCONT)
        with admin(system) as proxy:
            proxy.change_routes({name: {"read_timeout": None}}, "test: the timeout as it was")
        wait_applied(system, StateFile(home(system) / "migration.json").read().revision)


def test_an_upstream_that_is_down_gives_a_502_problem_naming_it(system: System, stage: int) -> None:
    name, path = PROBES[stage]
    path += "?q=the" if name == "search.search" else ""
    route = route_now(system, name)
    upstream = answering_upstream(route)
    falls_back = (route.mode is Mode.SERVICE and route.fallback is Fallback.MONOLITH
                  and route.owner is DataOwner.MONOLITH)  # fmt: skip
    pid = system.pid_of(upstream)
    os.killpg(os.getpgid(pid), signal.SIGKILL)  # the master and its workers: nothing listens
    request_id = fresh_id("down")
    answer = httpx.get(system.url + path, headers={"X-Request-ID": request_id}, timeout=30)
    if falls_back:  # a safe read while the monolith owns the data: the monolith answers
        assert answer.status_code == 200
        assert targets_of(system, [request_id]) == {request_id: "monolith"}
    else:
        problem = assert_problem(answer, 502, request_id)
        assert f"{upstream} upstream" in str(problem["detail"])
    deadline = time.monotonic() + 90
    while system.pid_of(upstream) == pid:  # the supervisor starts it again
        assert time.monotonic() < deadline, f"{upstream} was not restarted"
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("method", "path", "content", "status"),
    [
        ("POST", "/healthz", b"", 405),  # nginx's own location
        ("POST", "/api/users", b"x" * (1024 * 1024 + 1), 413),  # over the body limit
        ("GET", "/" + "a" * 4100, b"", 414),  # over the target limit
    ],
)
def test_nginx_s_own_errors_are_problems_with_the_request_id(
    system: System, stage: int, method: str, path: str, content: bytes, status: int
) -> None:
    request_id = fresh_id(f"own-{status}")
    answer = httpx.request(
        method, system.url + path, content=content, timeout=10,
        headers={"X-Request-ID": request_id, "Content-Type": "application/json"},
    )  # fmt: skip
    assert_problem(answer, status, request_id)
