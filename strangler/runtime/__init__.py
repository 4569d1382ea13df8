"""The runtime: which processes a stage runs, supervising them, and the run record."""
