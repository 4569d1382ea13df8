"""The black-box contract suite passes through the proxy at stage 0 (everything to the monolith).

The contract suite runs in its own pytest process against the proxy's URL
(`STRANGLER_CONTRACT_URL`), in front of the real monolith under gunicorn. The schemathesis part
is left out here: it is slow to collect, and it is run against the monolith by its own suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.proxy.servers import REPO, running_proxy


@pytest.mark.slow
def test_the_contract_suite_passes_through_the_proxy_in_mode_monolith(
    monolith_url: str, backend: str, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("the contract suite names one running system; proven once, on sqlite")
    if not (REPO / "tests" / "contract").is_dir():
        pytest.skip("the contract suite is not there yet")
    with running_proxy({"monolith": monolith_url}, tmp_path) as proxy_url:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
             "tests/contract", "--ignore=tests/contract/test_schemathesis.py"],
            cwd=REPO,
            env={**os.environ, "STRANGLER_CONTRACT_URL": proxy_url},
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "passed" in summary
