"""What both sides of the forum agree on, as code: the contract's request bodies, its
keyset cursors and its password hashes (the data moves between the monolith and the users
service, so both must read the same hashes). The document is `docs/openapi.yaml`. This package
must never hold a context's domain logic.
"""
