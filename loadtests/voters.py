"""The load of `bench_events`: closed-loop voters and a probe, in a process of their own.

Voters cast votes as fast as the polls service answers, each vote by a new user on a random poll
and option, and note when each 201 arrived (wall clock, for comparison with the consumer's
`applied_at`). The probe votes in a poll of its own, one vote at a time, then reads the results
API and the static page every few milliseconds until both show that vote: the delay a reader
outside sees. This module only generates load and measures; it starts nothing and asserts
nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

from strangler.plumbing.tokens import TokenSigner

PROBE_PAUSE = 0.005  # between two reads of the probe's results
PAGE_TOTAL = re.compile(r"(\d+) votes? · poll")


@dataclass
class Load:
    """What the voters and the probe saw."""

    accepted: list[tuple[int, float]] = field(default_factory=list)  # (user id, 201 at epoch s)
    errors: int = 0
    probe_results: list[float] = field(default_factory=list)  # seconds, 201 -> results show it
    probe_page: list[float] = field(default_factory=list)  # seconds, 201 -> page shows it


@dataclass(frozen=True)
class Plan:
    url: str
    polls: list[dict[str, Any]]
    probe_poll: dict[str, Any]
    connections: int
    seconds: float
    token_secret: str


async def _vote(session: Any, plan: Plan, signer: TokenSigner, user: int, poll: Any) -> int:
    option = random.choice(poll["options"])["id"]
    async with session.post(
        f"{plan.url}/api/polls/{poll['id']}/votes",
        json={"option_id": option},
        headers={"Authorization": f"Bearer {signer.issue(user)}"},
    ) as response:
        await response.read()
        return int(response.status)


async def _probe_until_shown(session: Any, plan: Plan, load: Load, total: int) -> None:
    """Read results and page until both count `total` votes (30 s at most)."""
    started = time.time()
    poll_id = plan.probe_poll["id"]
    results_at = page_at = None
    while (results_at is None or page_at is None) and time.time() - started < 30:
        if results_at is None:
            async with session.get(f"{plan.url}/api/polls/{poll_id}/results") as response:
                if (await response.json())["total"] >= total:
                    results_at = time.time() - started
        if page_at is None:
            async with session.get(f"{plan.url}/results/{poll_id}.html") as response:
                shown = PAGE_TOTAL.search(await response.text())
                if shown and int(shown.group(1)) >= total:
                    page_at = time.time() - started
        await asyncio.sleep(PROBE_PAUSE)
    if results_at is not None and page_at is not None:
        load.probe_results.append(results_at)
        load.probe_page.append(page_at)


async def _run(plan: Plan) -> Load:
    import aiohttp

    load = Load()
    signer = TokenSigner(plan.token_secret)
    users = itertools.count(1_000_000)
    deadline = time.perf_counter() + plan.seconds
    connector = aiohttp.TCPConnector(limit=plan.connections + 2)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def voter() -> None:
            while time.perf_counter() < deadline:
                user = next(users)
                status = await _vote(session, plan, signer, user, random.choice(plan.polls))
                if status == 201:
                    load.accepted.append((user, time.time()))
                else:
                    load.errors += 1

        async def probe() -> None:
            voted = 0
            while time.perf_counter() < deadline:
                if await _vote(session, plan, signer, next(users), plan.probe_poll) == 201:
                    voted += 1
                    await _probe_until_shown(session, plan, load, voted)

        await asyncio.gather(*(voter() for _ in range(plan.connections)), probe())
    return load


def run_load(plan: Plan, queue: Any) -> None:
    """Entry of the load process: run the plan, put the `Load` on `queue`."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    queue.put(asyncio.run(_run(plan)))
