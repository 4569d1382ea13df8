"""`python -m strangler.console --port P`: serve the console (what `strangler up` starts).

Settings come from `CONSOLE_*` variables (`strangler.console.settings`). This module must
never hold the console's logic.
"""

from __future__ import annotations

import argparse

import uvicorn

from strangler.console.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m strangler.console", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8020)
    arguments = parser.parse_args()
    uvicorn.run(
        create_app(), host=arguments.host, port=arguments.port, log_level="warning",
        access_log=False, proxy_headers=False,
    )  # fmt: skip


if __name__ == "__main__":
    main()
