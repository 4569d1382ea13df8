"""The gates of each move between two stages, in order.

Extracting a context whose data the monolith owns: migrate its database, start change capture,
backfill, start the sync and let it catch up, verify, start the service, shadow its reads,
canary them, cut over (a short write freeze while the data's owner and the routes flip).
Extracting search (no data to move): migrate, build the index from the forum's data, start the
service and let its consumer catch up, shadow, canary, switch the routes. Retiring the monolith:
serve the last stage's table, prove the monolith gets no request, stop it. Every rollback is
the mirror image and loses no write. This module must never run the gates (that is `journey`).
"""

from __future__ import annotations

from strangler.conductor.conductor import Conductor
from strangler.conductor.gates import Gate, GateFailed, wait_until
from strangler.conductor.steps import (
    build_data,
    cutover_gate,
    monolith_is_quiet,
    routes_to,
    wait_consumer_caught_up,
)
from strangler.conductor.traffic import canary_gate, shadow_gate
from strangler.datapath import apply, backfill, capture, cutover, schemas, status, verify
from strangler.datapath.contexts import Direction, Owner


def extraction(conductor: Conductor, context: str) -> list[Gate]:
    """Every gate from the stage before `context`'s to its own."""
    if not conductor.migration.contexts[context].moves_data:
        return _index_extraction(conductor, context)
    return _data_extraction(conductor, context)


def _index_extraction(conductor: Conductor, context: str) -> list[Gate]:
    """A context that owns no data of the monolith's: it builds its own (search's index)."""
    return [
        _schema_gate(conductor, context),
        Gate("build", f"build {context}'s data", lambda: build_data(conductor, context)),
        Gate(
            "service",
            f"start {context} and let its consumer catch up",
            lambda: _start_indexer(conductor, context),
        ),
        Gate("shadow", "shadow its reads", lambda: shadow_gate(conductor, context)),
        Gate("canary", "canary its reads", lambda: canary_gate(conductor, context)),
        Gate(
            "switch",
            "send its routes to the service",
            lambda: routes_to(conductor, context, "service"),
        ),
    ]


def _data_extraction(conductor: Conductor, context: str) -> list[Gate]:
    """A context whose data the monolith owns: move the data, then the traffic."""
    return [
        _schema_gate(conductor, context),
        Gate(
            "capture", "start change capture on the monolith", lambda: _capture(conductor, context)
        ),
        Gate("backfill", "copy the existing rows", lambda: _backfill(conductor, context)),
        Gate("sync", "start the sync and catch up", lambda: _sync(conductor, context)),
        Gate("verify", "verify both copies match", lambda: _verify(conductor, context)),
        Gate(
            "service",
            f"start the {context} service",
            lambda: _started(conductor, runs_service=True),
        ),
        Gate("shadow", "shadow its reads", lambda: shadow_gate(conductor, context)),
        Gate("canary", "canary its reads", lambda: canary_gate(conductor, context)),
        Gate(
            "cutover",
            "cut over: freeze its writes, move the data's owner and its routes",
            lambda: cutover_gate(conductor, context, cutover.cutover),
        ),
    ]


def retirement(conductor: Conductor, stage: int) -> list[Gate]:
    """From the last stage that needs the monolith to the one where nothing reaches it."""
    return [
        Gate("table", f"serve the stage {stage} route table", lambda: conductor.serve_table(stage)),
        Gate(
            "quiet", "prove the monolith receives no request", lambda: monolith_is_quiet(conductor)
        ),
        Gate("stop", "stop the monolith", lambda: _started(conductor, monolith_runs=False)),
    ]


def restoration(conductor: Conductor) -> list[Gate]:
    """Back from the retired monolith: start it again (its data stayed current)."""
    return [Gate("start", "start the monolith", lambda: _started(conductor, monolith_runs=True))]


def return_of(conductor: Conductor, context: str) -> list[Gate]:
    """Every gate that gives `context` back to the monolith, extracted or half-way there."""
    gates = [
        Gate(
            "routes",
            f"give {context} back to the monolith: its routes, and its data if it moved",
            lambda: _give_back(conductor, context),
        )
    ]
    if conductor.migration.contexts[context].moves_data:
        gates.append(
            Gate(
                "stop",
                f"stop the {context} service and its sync",
                lambda: _started(conductor, runs_service=False, runs_sync=False),
            )
        )
        gates.append(
            Gate("capture", "stop change capture", lambda: _capture_off(conductor, context))
        )
    else:
        gates.append(
            Gate(
                "stop",
                f"stop the {context} service",
                lambda: _started(conductor, runs_service=False),
            )
        )
    return gates


def _schema_gate(conductor: Conductor, context: str) -> Gate:
    def migrate() -> str:
        try:
            schemas.upgrade(context, conductor.home.database_url(context))
        except Exception as error:  # alembic and the driver raise many kinds; all are this gate's
            raise GateFailed(
                f"the {context} database refused its migration: {str(error).splitlines()[0]}",
                f"check {context.upper()}_DATABASE_URL and that the database answers, then run"
                " the same command again",
            ) from error
        return "at head"

    return Gate("schema", f"migrate the {context} database", migrate)


def _started(conductor: Conductor, **running: bool) -> str:
    conductor.need(**running)
    return "done; every process healthy"


def _capture(conductor: Conductor, context: str) -> str:
    with conductor.link(context) as link:
        capture.start(link, Direction.FORWARD)
        capturing = status.describe(link).capturing
        missing = [
            feed.name for feed in link.context.feeds if f"{feed.name} forward" not in capturing
        ]
    if missing:
        raise GateFailed(f"no capture on {', '.join(missing)}", "run the same command again")
    return ", ".join(capturing)


def _backfill(conductor: Conductor, context: str) -> str:
    with conductor.link(context) as link:
        report = backfill.backfill(link)
        if not status.describe(link).is_backfilled:
            raise GateFailed(
                "the backfill stopped before every table was copied",
                "run the same command again: the backfill resumes after its last chunk",
            )
    return f"{report.rows_this_run:,} rows in {report.seconds:.1f}s"


def _sync(conductor: Conductor, context: str) -> str:
    conductor.need(runs_sync=True)
    limit = conductor.settings.max_sync_lag
    with conductor.link(context) as link:
        feeds = link.context.directions(Owner.MONOLITH)

        def behind() -> int:
            return sum(lag.entries for lag in apply.lags(link, feeds).values())

        if not wait_until(lambda: behind() <= limit, conductor.settings.timeout_seconds):
            raise GateFailed(
                f"the sync is still {behind()} changes behind",
                f"see .strangler/logs/{context}-sync.log, then run the same command again",
            )
        return f"{behind()} changes behind"


def _verify(conductor: Conductor, context: str) -> str:
    with conductor.link(context) as link:
        report = verify.verify(link, Direction.FORWARD)
        for _ in range(3):  # under live writes a difference may only be lag
            if report.is_equal:
                break
            apply.drain(link, link.context.directions(Owner.MONOLITH))
            report = verify.verify_ranges(link, Direction.FORWARD, report.differences)
    if not report.is_equal:
        shown = "; ".join(difference.describe() for difference in report.differences[:3])
        raise GateFailed(
            f"{len(report.differences)} key ranges differ: {shown}",
            f"`strangler data repair {context}`, then run the same command again",
        )
    return "every chunk's checksum matches"


def _start_indexer(conductor: Conductor, context: str) -> str:
    conductor.need(runs_service=True)
    return wait_consumer_caught_up(conductor, f"{context}-consumer")


def _give_back(conductor: Conductor, context: str) -> str:
    if conductor.migration.contexts[context].moves_data:
        with conductor.link(context) as link:
            owner = status.describe(link).state.owner
        if owner is Owner.SERVICE:
            return cutover_gate(conductor, context, cutover.rollback)
    return routes_to(conductor, context, "monolith")


def _capture_off(conductor: Conductor, context: str) -> str:
    with conductor.link(context) as link:
        stopped = capture.stop(link, Direction.FORWARD)
    return f"stopped {', '.join(stopped)}" if stopped else "none was on"
