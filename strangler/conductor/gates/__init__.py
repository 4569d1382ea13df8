"""The gates of the moves between stages: one object per gate, one gate per module.

Each gate has a short `name` (what the durable state records once it passed), a `title` (what
a person reads), `run()` (do the work and check it; raise `GateFailed` with what failed and what
to do) and `undo()` (put back what `run` changed: a rollback runs the undo of every gate the
move passed, last first). Both must be safe to run again after a crash at any point.
"""

from strangler.conductor.gates.base import Gate, GateFailed, wait_until

__all__ = ["Gate", "GateFailed", "wait_until"]
