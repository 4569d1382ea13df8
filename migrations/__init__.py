"""Schemas and data: one alembic environment per database, and the data path between them."""
