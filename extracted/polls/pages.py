"""The static results pages: one HTML file per poll, `<results dir>/<poll id>.html`.

The folder is what a bucket behind a CDN would hold. Pages are rendered from computed results
exactly as the monolith renders its page (Jinja's defaults, autoescaped) and replaced
atomically: written to a temporary file in the same folder, then renamed over the old page, so
a reader sees the old page or the new one, never a torn one. Files are not fsynced: a page is
derived data, and after a machine crash `python -m extracted.polls.projection --rebuild`
rewrites them all. This module never reads the database and never answers HTTP.
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, Template, select_autoescape

from strangler.plumbing.clock import to_iso

if TYPE_CHECKING:
    from extracted.polls.presenters import Results


@cache
def _template() -> Template:
    environment = Environment(
        loader=PackageLoader("extracted.polls", "templates"), autoescape=select_autoescape()
    )
    return environment.get_template("results.html")


def render(results: Results) -> str:
    """The page of `results`, wherever it is kept (this folder, or a bucket)."""
    return _template().render(results=results, as_of=to_iso(results.as_of))


class ResultsPages:
    """Renders, writes and reads the results pages kept in one folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, poll_id: int) -> Path:
        return self.directory / f"{poll_id}.html"

    def render(self, results: Results) -> str:
        return render(results)

    def write(self, results: Results) -> None:
        """Replace the page of `results.poll_id` with one showing `results`, atomically."""
        self.directory.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            dir=self.directory, prefix=f".{results.poll_id}.", suffix=".tmp"
        )
        try:
            with os.fdopen(descriptor, "wb") as page:
                page.write(self.render(results).encode())
            os.chmod(temporary, 0o644)  # readable by whatever serves the folder
            os.replace(temporary, self.path(results.poll_id))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def read(self, poll_id: int) -> bytes | None:
        """The page as last written, or None if there is none yet."""
        try:
            return self.path(poll_id).read_bytes()
        except FileNotFoundError:
            return None
