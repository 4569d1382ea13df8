"""The conductor: the migration as a durable state machine (stages, gates, moves, rollback,
checks)."""
