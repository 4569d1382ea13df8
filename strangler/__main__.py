"""`python -m strangler` is the `strangler` command."""

from strangler.cli.app import main

main()
