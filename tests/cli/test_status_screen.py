"""`strangler status` off a terminal: nothing cut at 80 columns; the AWS emulator labelled."""

from __future__ import annotations

import io

from rich.console import Console

from strangler.cli.run_commands import show_status
from strangler.conductor.inspection import ProcessView, RouteView, SystemView
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


def test_the_aws_emulator_is_shown_as_an_emulator() -> None:
    view = SystemView(2, "polls extracted", MigrationState())
    view.processes = [
        ProcessView("aws-emulator", 10, 5000, "http://127.0.0.1:5000", True, True, 0, "x.log"),
        ProcessView("polls-stream-poller", 11, 5001, "http://127.0.0.1:5001", True, True, 0, "y"),
    ]
    written = io.StringIO()
    show_status(view, Console(file=written, width=160, force_terminal=False))
    assert "aws-emulator (moto: an AWS emulator, not AWS)" in written.getvalue()
    assert "polls-stream-poller (" not in written.getvalue()
