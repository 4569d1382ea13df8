"""How many sessions a service runs at once: one number for its threads and its connections.

`plumbing.fastapi` runs sessions in at most SESSION_THREADS worker threads and
`plumbing.database` keeps a pooled connection for each, so neither outgrows the other. Kept
apart from both so that a process without a database (a function over DynamoDB) loads no
SQLAlchemy for it: this module must never import anything.
"""

# The worker threads a service runs its sessions in (`plumbing.fastapi.in_session`), and the
# connections its session engine keeps open: one for each.
SESSION_THREADS = 8
