"""The polls context's hooks into the data path, named in the workspace file.

While the monolith owns polls, the data path copies its rows into the service's tables; the
results projection and the static results pages are the service's own and must follow. So:
`refresh_results` recomputes the results of the polls that copied rows touch, in the same
transaction that writes them; `rebuild_results` recomputes every poll's results and rewrites
every page at cutover, under the write freeze, into the folder the polls service serves (its
`POLLS_RESULTS_DIR`, from the service's settings the data path passes in). This module must
never decide when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from extracted.polls import projection
from extracted.polls.pages import ResultsPages
from extracted.polls.settings import ResultsSettings


def refresh_results(connection: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    """Recompute the results of the polls these rows belong to, in the same transaction."""
    key = "id" if table == "polls" else "poll_id"
    poll_ids = {row[key] for row in rows}
    if poll_ids:
        with Session(bind=connection) as session:
            projection.refresh(session, poll_ids)


def rebuild_results(engine: Engine, settings: Mapping[str, str]) -> None:
    """Every poll's results and static page, from the votes, into the folder the polls service
    serves (its `POLLS_RESULTS_DIR`, else this process's)."""
    configured = settings.get("POLLS_RESULTS_DIR")
    folder = Path(configured) if configured else ResultsSettings().results_dir
    projection.rebuild(engine)
    projection.write_all_pages(engine, ResultsPages(folder))
