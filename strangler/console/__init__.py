"""The console: the live web page of a running migration (docs/console.md).

`create_app(settings)` builds it; `python -m strangler.console --port P` serves it, as
`strangler up` does beside the proxy. It shows the journey (stages, gates, thresholds,
decisions), the routes and their traffic per side, shadow diffs, the data path, the processes,
a graph of who calls whom and recent traces, live over server-sent events; its buttons run the
same commands as the command line, in the system's folder. This package must never change the
migration itself: it runs the commands that do.
"""

from strangler.console.app import create_app
from strangler.console.settings import ConsoleSettings

__all__ = ["ConsoleSettings", "create_app"]
