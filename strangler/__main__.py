"""`python -m strangler` is the `strangler` command."""

from strangler.cli import app

app()
