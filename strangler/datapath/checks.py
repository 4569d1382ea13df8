"""What a cutover or rollback checks: before anything changes, and under the freeze.

`preflight` refuses a move that cannot work (no capture, backfill incomplete, no route or no
healthy upstream at the proxy). `pre_verify` runs the full checksum verify while writes go on,
after turning on key tracking, and re-checks differences once the sync caught up (they may be
lag). `narrow` then verifies, still while writes go on, the keys the feed applied meanwhile,
forgetting each before it is checked (a later change tracks it again), in rounds until few are
left. `verify_frozen` finally checks, under the freeze, only the keys of the last round and what
is still in doubt: a few rows at any table size and any rate of writes, so the freeze stays
short. This module must never change data, capture or routes.
"""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import httpx

from strangler.datapath import apply, capture, positions, state, verify
from strangler.datapath.contexts import Direction, Feed, Owner
from strangler.datapath.link import Link
from strangler_proxy.client import ProxyAdmin


class MoveRefused(RuntimeError):
    """The move did not happen: nothing was changed, or every step taken was undone."""


def preflight(link: Link, proxy: ProxyAdmin, to: Owner) -> None:
    """Refuse early, before anything changes, when the move cannot work."""
    main = link.context.main
    old = Direction.FORWARD if to is Owner.SERVICE else Direction.REVERSE
    now = state.read(link.monolith, link.context.name)
    if now.owner is to:
        raise MoveRefused(f"{link.context.name} is already owned by the {to.value}")
    if not capture.is_installed(link.source(old), main, old):
        raise MoveRefused(f"{link.context.name} has no {old.value} capture: backfill first")
    position = positions.current(link.target(old), main.position_key(old))
    if position is None or not position.is_active:
        raise MoveRefused(f"the {old.value} feed of {link.context.name} is not active")
    if old is Direction.FORWARD:
        with link.service.connect() as connection:
            if not all(apply.is_backfilled(connection, feed) for feed in link.context.feeds):
                raise MoveRefused(f"the backfill of {link.context.name} is not complete")
    if not proxy.routes_of(link.context.name):
        raise MoveRefused(f"the proxy has no route of context {link.context.name}")
    upstream = link.context.name if to is Owner.SERVICE else "monolith"
    url = proxy.upstream_url(upstream)
    if url is None:
        raise MoveRefused(f"the proxy knows no URL for {upstream} (PROXY_{upstream.upper()}_URL)")
    if not _is_healthy(url, link.context.health_path(upstream)):
        raise MoveRefused(f"{upstream} at {url} is not healthy")


def _is_healthy(url: str, health_path: str | None) -> bool:
    """Its health path answers 200; an app with none (the workspace says so) accepts a
    connection on its port."""
    if health_path is None:
        parsed = urlparse(url)
        try:
            with socket.create_connection((parsed.hostname, parsed.port or 80), timeout=5):
                return True
        except OSError:
            return False
    try:
        return httpx.get(f"{url}{health_path}", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def pre_verify(link: Link, chunk_rows: int) -> list[verify.Difference]:
    """Full verify while writes go on; from now the feed records the keys it applies."""
    main = link.context.main
    positions.change(link.service, main.position_key(Direction.FORWARD), is_tracking=True)
    doubtful = verify.verify(link, Direction.FORWARD, chunk_rows, feeds=[main]).differences
    for _ in range(3):  # a difference may only be lag: let the sync catch up, look again
        if not doubtful:
            break
        apply.drain(link, [(main, Direction.FORWARD)])
        doubtful = verify.verify_ranges(link, Direction.FORWARD, doubtful).differences
    return doubtful


NARROW_ROUNDS = 4
FEW_KEYS = 200


def narrow(
    link: Link, direction: Direction, doubtful: list[verify.Difference]
) -> list[verify.Difference]:
    """Verify the tracked keys of the main feed while writes go on, round after round, until
    few remain. Returns what is still in doubt for the freeze: keys that differed, and the
    `doubtful` ranges whose differing keys these rounds did not check."""
    main = link.context.main
    target, key = link.target(direction), main.position_key(direction)
    differing: list[verify.Difference] = []
    checked: dict[str, set[str]] = {}
    for _ in range(NARROW_ROUNDS):
        touched = positions.touched(target, key)
        if sum(len(found) for found in touched.values()) <= FEW_KEYS:
            break
        positions.forget_touched(target, key, touched)
        apply.drain(link, [(main, direction)])
        differing += verify.verify_keys(link, main, direction, touched).differences
        for table_name, found in touched.items():
            checked.setdefault(table_name, set()).update(found)
    return _unexplained(link, doubtful, checked, direction, main) + differing


def verify_frozen(link: Link, old: Direction, doubtful: list[verify.Difference]) -> int:
    """Under the freeze: every key the old feed applied lately, and every doubtful range.

    Returns how many keys were checked; raises MoveRefused if anything differs.
    """
    main = link.context.main
    touched = positions.touched(link.target(old), main.position_key(old))
    keys = verify.verify_keys(link, main, old, touched)
    ranges = verify.verify_ranges(link, old, _unexplained(link, doubtful, touched, old, main))
    differences = keys.differences + ranges.differences
    if differences:
        shown = "; ".join(difference.describe() for difference in differences[:5])
        raise MoveRefused(
            f"verify found {len(differences)} differences, so nothing moved: {shown}"
            f" (repair them with `strangler data repair {link.context.name}`)"
        )
    return sum(len(found) for found in touched.values())


def _unexplained(
    link: Link,
    doubtful: list[verify.Difference],
    touched: dict[str, set[str]],
    direction: Direction,
    main: Feed,
) -> list[verify.Difference]:
    """The doubtful ranges that the keys re-applied since do not account for.

    A range whose differing keys were all applied again is checked key by key; only the others
    are read whole under the freeze.
    """
    left = []
    for difference in doubtful:
        applied = touched.get(main.table(difference.table, direction).target_name(direction), set())
        is_complete = len(difference.keys) < verify.MAX_KEYS_PER_DIFFERENCE
        if not (is_complete and verify.encoded_keys(link, difference, direction) <= applied):
            left.append(difference)
    return left
