"""The data path between the monolith's database and each extracted service's database.

Change capture (triggers into an append-only change log), resumable backfill, checksum verify
and repair, the sync that applies the change log idempotently and in order, and the cutover
and rollback that move a context's data ownership with a bounded write freeze at the proxy.
One module per concern; `docs/data-path.md` is the guide and the public API. Nothing here runs
at import, and nothing here serves HTTP to clients: the CLI (`strangler data ...`) and the
sync process (`python -m migrations.data.sync`) call in.
"""
