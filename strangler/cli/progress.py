"""How a move looks in a terminal: one line per gate, its steps beneath it, a line per stage.

The conductor sends events (`strangler.conductor.events`); this turns them into rich text that
reads the same in a terminal and in a log file. This module must never decide anything.
"""

from __future__ import annotations

from rich.console import Console

from strangler.conductor.events import (
    Event,
    GatePassed,
    GateSkipped,
    GateStopped,
    Listener,
    MoveBegan,
    MoveFinished,
    Step,
)


def printer(console: Console) -> Listener:
    """A listener that prints every event of a move on `console`."""

    def show(event: Event) -> None:
        match event:
            case MoveBegan():
                verb = "to" if event.is_forward else "back from"
                console.print(
                    f"[bold]stage {event.from_stage} -> {event.to_stage}[/] ({verb} {event.label})"
                )
            case GateSkipped():
                console.print(f"  [dim]✓ {event.title} (passed before)[/]")
            case GatePassed():
                shown = f": {event.result}" if event.result else ""
                console.print(f"  [green]✓[/] {event.title}{shown} [dim]({event.seconds:.1f}s)[/]")
            case GateStopped():
                console.print(f"  [red]✗ {event.title}[/]: {event.what}")
            case Step():
                console.print(f"    [dim]· {event.text}[/]")
            case MoveFinished():
                console.print(f"[green]reached stage {event.stage}[/]: {event.title}")

    return show
