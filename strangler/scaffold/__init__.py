"""Bringing a Flask app of one's own: a first workspace file, and services from the template.

`strangler init` reads the app (its URL map, its models or its database) and writes a first
`strangler.toml` (`discovery`, `grouping`, `first_workspace`); `strangler new service` renders
the tested template (`template/`) into the user's tree for one context, with models for its
tables and an alembic environment whose first revision creates them (`service`,
`models_code`), and adds the service to the workspace file (`workspace_edits`); `alembic_ini`
keeps an `alembic.ini` section per database. Nothing here runs at import.
"""
