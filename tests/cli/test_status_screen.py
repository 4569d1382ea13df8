"""`strangler status` off a terminal: nothing cut at 80 columns."""

from __future__ import annotations

import io

from rich.console import Console

from strangler.cli.run_commands import show_status
from strangler.conductor.inspection import RouteView, SystemView
from strangler.state import MigrationState

LONG_PATH = "/api/threads/{thread_id}/posts/{post_id}/reactions/{reaction_id}/history"


def test_a_long_route_is_printed_whole_when_the_output_is_not_a_terminal() -> None:
    view = SystemView(3, "forum extracted", MigrationState())
    view.routes = [
        RouteView("forum-thread-post-reaction-history", ["GET", "POST", "PATCH"], LONG_PATH,
                  "forum", "canary", 25.0, "service"),
    ]  # fmt: skip
    written = io.StringIO()
    show_status(view, Console(file=written, width=80, force_terminal=False))
    text = written.getvalue()
    assert "forum-thread-post-reaction-history" in text
    assert LONG_PATH in text
    assert "…" not in text
