"""A running strangler proxy for other suites: `running_proxy(upstreams, state_dir)`.

The contract suite can prove the proxy with it, e.g. in tests/contract/conftest.py:

    @pytest.fixture(scope="session")
    def proxy_deployment(monolith_url, tmp_path_factory):
        with running_proxy({"monolith": monolith_url}, tmp_path_factory.mktemp("proxy")) as url:
            yield Deployment.single("proxy", url)

and "proxy" added to IMPLEMENTATIONS. The proxy runs the stage 0 table (everything in mode
monolith) unless another table file is given.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from strangler.processes import free_port, start
from tests.support.servers import TEST_TOKEN_SECRET

REPO = Path(__file__).resolve().parents[2]
STAGE0 = REPO / "stages" / "stage0.toml"


@contextmanager
def running_proxy(
    upstreams: Mapping[str, str], state_dir: Path, table: Path = STAGE0, **extra_env: str
) -> Iterator[str]:
    """Serve the proxy in front of `upstreams` (context name -> URL); yield its base URL."""
    port = free_port()
    env = {
        "PROXY_ROUTE_TABLE_PATH": str(table),
        "PROXY_AUDIT_LOG_PATH": str(state_dir / "proxy-audit.jsonl"),
        "STRANGLER_TOKEN_SECRET": TEST_TOKEN_SECRET,
        **{f"PROXY_{name.upper()}_URL": url for name, url in upstreams.items()},
        **extra_env,
    }
    process = start(
        "proxy",
        [sys.executable, "-m", "strangler_proxy", "--host", "127.0.0.1", "--port", str(port)],
        env,
        health_url=f"http://127.0.0.1:{port}/healthz",
        log_path=state_dir / "logs" / "proxy.log",
    )
    try:
        process.wait_healthy()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()
