"""What a move tells whoever watches it: a small set of event types, sent to a callback.

The command line renders them (rich, in a terminal or not), the demo counts them, a test
collects them. This module must never print.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MoveBegan:
    from_stage: int
    to_stage: int
    label: str  # the stage the move reaches or leaves

    @property
    def is_forward(self) -> bool:
        return self.to_stage > self.from_stage


@dataclass(frozen=True)
class GateSkipped:
    """A gate passed before: the move resumes after it."""

    title: str


@dataclass(frozen=True)
class GatePassed:
    title: str
    result: str | None
    seconds: float


@dataclass(frozen=True)
class GateStopped:
    """A gate failed: what failed, and what to do."""

    title: str
    what: str
    todo: str


@dataclass(frozen=True)
class Step:
    """A step inside a gate (a cutover's freeze, drain, flip...)."""

    text: str


@dataclass(frozen=True)
class MoveFinished:
    stage: int
    title: str


Event = MoveBegan | GateSkipped | GatePassed | GateStopped | Step | MoveFinished
Listener = Callable[[Event], None]


def ignore(event: Event) -> None:
    """A listener that watches nothing."""
