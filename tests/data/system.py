"""A whole system for cutover tests: monolith, services, proxy and syncs, all real processes.

`running_system` seeds a monolith, migrates each context's service database, starts the
monolith (gunicorn), each service (uvicorn), the proxy in front (stage 0's table, admin API
open) and one sync process per context, then backfills each context and waits for its sync.
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

from migrations import runner
from migrations.data import backfill
from migrations.data.link import Link
from migrations.data.proxy_admin import ProxyAdmin
from plumbing.tokens import TokenSigner
from tests.data import processes
from tests.data.conftest import seeded
from tests.support.databases import fresh_database
from tests.support.servers import (
    TEST_TOKEN_SECRET,
    running_monolith,
    running_proxy,
    running_service,
)

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
        links, urls = {}, {"monolith": stack.enter_context(running_monolith(monolith, folder))}
        for context in contexts:
            database = stack.enter_context(fresh_database(backend, folder, context))
            runner.upgrade(context, database)
            links[context] = stack.enter_context(Link.open(context, monolith, database))
            extra = (
                {"FORUM_USERS_URL": urls["users"]} if context == "forum" and "users" in urls else {}
            )
            urls[context] = stack.enter_context(running_service(context, database, folder, extra))
        proxy = stack.enter_context(
            running_proxy(
                urls, folder, PROXY_ADMIN_TOKEN=ADMIN_TOKEN, PROXY_TABLE_WATCH_SECONDS="0",
                PROXY_ANALYSIS_INTERVAL_SECONDS="0", PROXY_ACCESS_LOG="false",
            )
        )  # fmt: skip
        admin = ProxyAdmin(proxy, ADMIN_TOKEN, actor="pytest")
        stack.callback(admin.close)
        for context, link in links.items():
            backfill.backfill(link, chunk_rows=200)
            sync, _ = processes.sync(processes.urls(link), context, folder)
            stack.callback(sync.stop)
            sync.wait_healthy()
            processes.caught_up(link)
        yield System(proxy, admin, links, urls)


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
