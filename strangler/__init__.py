"""The `strangler` command line: wiring and process supervision, no domain logic."""
