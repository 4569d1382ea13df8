"""The command line: parses, prints, calls the conductor. The only package that imports typer or
rich."""
