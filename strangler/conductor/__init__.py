"""The conductor: the migration as a durable state machine.

A move takes the system from one stage to the next (or back) through gates, each one object in
one file (`gates/`): its name, what it does, and its undo. The move and every passed gate are
written to the durable state (`strangler.state`) before they are reported, so any command that
dies is resumed by running it again, or undone by a rollback. The conductor reports progress
as events (`events`); it never prints, and it knows the running system only through its
collaborators (`ports`). This package must never import typer or rich.
"""
