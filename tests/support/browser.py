"""Debian's Chromium driven by Playwright, for the tests that open a page as a person would.

Never a downloaded browser: `apt-get install chromium`, as `.ci/run` does. A test module sets
`pytestmark = needs_chromium()`, launches it for the module with `launched()` and collects what
a page reports as errors with `errors_of(page)`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("STRANGLER_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def needs_chromium() -> list[pytest.MarkDecorator]:
    """Slow, and skipped with the way to install it where Debian's Chromium is missing."""
    return [
        pytest.mark.slow,
        pytest.mark.skipif(
            not CHROMIUM.exists(),
            reason=f"no Chromium at {CHROMIUM}: `apt-get install chromium` (as .ci/run does)",
        ),
    ]


@contextmanager
def launched() -> Iterator[Any]:
    """Debian's Chromium, headless, closed on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def errors_of(page: Any) -> list[str]:
    """What the page's console reports as errors and the errors its scripts raise, from now on
    (a test asserts the list is empty at its end)."""
    errors: list[str] = []
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors
