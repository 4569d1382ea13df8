"""A whole system for cutover tests: monolith, services, proxy and syncs, all real processes.

`running_system` seeds a monolith, migrates each context's service database, starts the
monolith (gunicorn), each service (uvicorn) and the proxy in front (stage 0's table, admin API
open) all at once, then backfills each context and starts its sync process. The processes are
the ones `strangler.runtime.launch` describes, as `strangler up` runs them.
`SteadyLoad` drives writes and reads through the proxy and records every answer with its time.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from strangler.datapath import backfill, schemas
from strangler.datapath.link import Link
from strangler.plumbing.tokens import TokenSigner
from strangler.runtime.launch import (
    context_environment,
    monolith_command,
    monolith_environment,
    proxy_command,
    service_command,
    service_environment,
)
from strangler.runtime.processes import free_port, start
from strangler.workspace import find_workspace
from strangler_proxy.client import ProxyAdmin
from tests.data import processes
from tests.data.conftest import seeded
from tests.support.databases import fresh_database
from tests.support.servers import FAST_PASSWORDS, TEST_TOKEN_SECRET, proxy_upstreams

ADMIN_TOKEN = "data-path-admin-token-0123456789"


@dataclass
class System:
    proxy_url: str
    admin: ProxyAdmin
    links: dict[str, Link]
    service_urls: dict[str, str]

    def token(self, user_id: int) -> str:
        return TokenSigner(TEST_TOKEN_SECRET).issue(user_id)


@contextmanager
def running_system(backend: str, folder: Path, contexts: tuple[str, ...]) -> Iterator[System]:
    with ExitStack() as stack:
        monolith = seeded(stack.enter_context(fresh_database(backend, folder, "monolith")))
        schemas.upgrade("monolith", monolith)
        databases = {}
        for context in contexts:
            databases[context] = stack.enter_context(fresh_database(backend, folder, context))
            schemas.upgrade(context, databases[context])
        ports: dict[str, int] = {}
        for name in ("monolith", "proxy", *contexts):
            while (port := free_port()) in ports.values():  # a port freed twice is given twice
                continue
            ports[name] = port
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        starting = [_monolith(monolith, ports["monolith"], folder)]
        starting += [
            _service(name, databases[name], ports[name], urls, folder) for name in contexts
        ]
        starting.append(
            _proxy(ports["proxy"], {n: urls[n] for n in ("monolith", *contexts)}, folder)
        )
        _all_healthy(stack, starting, folder)
        links = {
            name: stack.enter_context(Link.open(name, monolith, databases[name]))
            for name in contexts
        }
        syncs = []
        for context, link in links.items():
            backfill.backfill(link, chunk_rows=200)
            syncs.append(processes.sync_spec(processes.urls(link), context))
        _all_healthy(stack, syncs, folder)
        for link in links.values():
            processes.caught_up(link)
        admin = ProxyAdmin(urls["proxy"], ADMIN_TOKEN, actor="pytest")
        stack.callback(admin.close)
        yield System(urls["proxy"], admin, links, urls)


Spec = tuple[str, list[str], dict[str, str], int]


def _monolith(database: str, port: int, folder: Path) -> Spec:
    workspace = find_workspace()
    env = {
        **monolith_environment(workspace, database, TEST_TOKEN_SECRET, folder),
        **FAST_PASSWORDS,
    }
    return "monolith", monolith_command(workspace, port), env, port


def _service(context: str, database: str, port: int, urls: dict[str, str], folder: Path) -> Spec:
    workspace = find_workspace()
    env = {
        **service_environment(workspace, context, database, TEST_TOKEN_SECRET),
        **context_environment(workspace, context, folder, urls.get),
        f"{context.upper()}_PASSWORD_TIME_COST": "1",
        f"{context.upper()}_PASSWORD_MEMORY_KIB": "1024",
    }
    return context, service_command(workspace, context, port), env, port


def _proxy(port: int, upstreams: dict[str, str], folder: Path) -> Spec:
    env = {
        "PROXY_ROUTE_TABLE_PATH": str(_stage_zero_table(folder)),
        "PROXY_AUDIT_LOG_PATH": str(folder / "proxy-audit.jsonl"),
        "PROXY_ADMIN_TOKEN": ADMIN_TOKEN,
        "PROXY_TABLE_WATCH_SECONDS": "0",
        "PROXY_ANALYSIS_INTERVAL_SECONDS": "0",
        "PROXY_ACCESS_LOG": "false",
        "STRANGLER_TOKEN_SECRET": TEST_TOKEN_SECRET,
        **proxy_upstreams(upstreams),
    }
    return "proxy", proxy_command(port), env, port


def _stage_zero_table(folder: Path) -> Path:
    path = folder / "stage0-table.toml"
    path.write_text(find_workspace().migration().stage(0).table_text())
    return path


def _all_healthy(stack: ExitStack, specs: list[Spec], folder: Path) -> None:
    """Start every process at once, then wait for each: startups overlap."""
    started = []
    for name, argv, env, port in specs:
        process = start(
            name, argv, env, health_url=f"http://127.0.0.1:{port}/healthz",
            log_path=folder / "logs" / f"{name}.log", cwd=folder,
        )  # fmt: skip
        stack.callback(process.stop)
        started.append(process)
    for process in started:
        process.wait_healthy(60)


@dataclass(frozen=True)
class Answer:
    started: float
    ended: float
    method: str
    status: int
    created: int | None  # the id of what a write created


@dataclass
class SteadyLoad:
    """Writers and readers through the proxy, until stopped; every answer is kept."""

    write: Callable[[httpx.Client, int], httpx.Response]
    read: Callable[[httpx.Client, int], httpx.Response]
    writers: int = 2
    readers: int = 1
    answers: list[Answer] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _counter: Iterator[int] = field(default_factory=itertools.count)

    def start(self) -> SteadyLoad:
        for is_writer in [True] * self.writers + [False] * self.readers:
            thread = threading.Thread(target=self._run, args=(is_writer,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, is_writer: bool) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stopping.is_set():
                number = next(self._counter)
                started = time.time()
                answer = (self.write if is_writer else self.read)(client, number)
                created = answer.json().get("id") if answer.status_code == 201 else None
                method = "POST" if is_writer else "GET"
                self.answers.append(
                    Answer(started, time.time(), method, answer.status_code, created)
                )
                time.sleep(0.005)

    def wait_for(self, count: int, timeout: float = 60) -> None:
        target = len(self.answers) + count
        deadline = time.monotonic() + timeout
        while len(self.answers) < target:
            assert time.monotonic() < deadline, "the load stalled"
            time.sleep(0.01)

    def stop(self) -> list[Answer]:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=60)
        return self.answers

    def created(self) -> set[int]:
        return {answer.created for answer in self.answers if answer.created is not None}
