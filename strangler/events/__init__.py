"""The event path between services: outbox relay, buses and idempotent consumers.

Plumbing for extracted services only; it holds no domain. A service records events in its
own outbox (`strangler.events.outbox`); `relay` publishes them at least once to a bus (`bus`,
`database_bus`, `redis_bus`); `runner` applies them exactly once in effect, remembering
applied event ids in the consumer's own database (`tables`). Relays and consumers run as
their own processes:

    python -m extracted.events.relay --source forum
    python -m extracted.events.consumer search

Nothing is imported here, so that `python -m` runs each module exactly once. See
docs/events.md.
"""
