"""A closed-loop load for the reload tests: workers send one request after another and count
what came back. A request on a kept-alive connection the server closed as idle before reading
it (a reload does that) is sent again once, as HTTP clients do (RFC 9112, 9.3.1)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable

import httpx

# (client, worker number, request number of that worker) -> the answer
Request = Callable[[httpx.Client, int, int], httpx.Response]
# What an answer counts as; a string starting with "failed" is a failure.
Outcome = Callable[[httpx.Response], Hashable]


class ClosedLoop:
    """`workers` threads sending `request` until the block ends, counting `outcome`s."""

    def __init__(self, request: Request, outcome: Outcome, workers: int) -> None:
        self.request, self.outcome = request, outcome
        self.stopping = threading.Event()
        self.answers: Counter[Hashable] = Counter()
        self.failures: list[str] = []
        self.resent = 0
        self.sent: list[tuple[int, int]] = []  # (worker, request number), once per request
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(workers)]

    def __enter__(self) -> ClosedLoop:
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
                outcome = self._send(client, number, count)
                with self._lock:
                    self.sent.append((number, count))
                    if isinstance(outcome, str) and outcome.startswith("failed"):
                        self.failures.append(outcome)
                    else:
                        self.answers[outcome] += 1

    def _send(self, client: httpx.Client, number: int, count: int) -> Hashable:
        for attempt in range(2):
            try:
                answer = self.request(client, number, count)
            except (httpx.RemoteProtocolError, httpx.ReadError) as error:
                # Closed (or reset, as data was still unread) before any byte of an answer:
                # the request was never read.
                never_read = "without sending a response" in str(error) or "reset" in str(error)
                if attempt == 0 and never_read:
                    with self._lock:
                        self.resent += 1
                    continue
                return f"failed: {error!r}"
            except httpx.HTTPError as error:
                return f"failed: {error!r}"
            return self.outcome(answer)
        return "failed: closed twice"
