"""Running one proxy process: its public port and, when configured, its admin port.

Both ports are served by uvicorn `Server`s on one event loop, so the admin API acts on the
very state the public port serves from (table, freezes, shadow statistics, canary, breakers).
Both sockets are bound before anything starts, so a port that is taken fails the process at
once, before it reports ready; the proxy's own startup and shutdown run once, around both
servers, and SIGINT/SIGTERM stop both. The open-file limit is raised to fit the connection
caps (or the public cap is lowered to fit it, with a warning). This module must never handle
a request itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import resource
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
import uvloop

from strangler.plumbing.logs import get_logger
from strangler_proxy.app import ProxyApp, create_app
from strangler_proxy.server import ConnectionLimits, ProxyHttpProtocol
from strangler_proxy.settings import ProxySettings

log = get_logger("proxy")

# Connections the admin port serves at once: operators and the conductor, never the public.
ADMIN_MAX_CONNECTIONS = 32
# Open files the process needs besides client connections (logs, table, audit, listeners).
_SPARE_FILES = 64
STARTUP_FAILED = 3  # as uvicorn exits when a server cannot start (a taken port, a bad table)
SETTINGS_REFUSED = 2


class _Server(uvicorn.Server):
    """A uvicorn server whose signals `serve` handles, for all servers of the process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(frozen=True)
class Listener:
    """One bound socket and the ASGI app and limits it is served with."""

    sock: socket.socket
    config: uvicorn.Config


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on host:port; OSError when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def fit_open_files(wanted: int) -> int:
    """Raise the soft open-file limit towards `wanted`; return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return wanted if soft == resource.RLIM_INFINITY else int(soft)


def connection_cap(settings: ProxySettings) -> int:
    """The public port's cap on connections, lowered if the open-file limit cannot hold it."""
    others = ADMIN_MAX_CONNECTIONS + settings.pool_limit + settings.shadow_concurrency
    others += _SPARE_FILES
    available = fit_open_files(settings.max_connections + others) - others
    if available < settings.max_connections:
        log.warning(
            "connection cap lowered to fit the open-file limit",
            configured=settings.max_connections,
            cap=max(1, available),
        )
    return max(1, min(settings.max_connections, available))


def _config(app: object, limits: ConnectionLimits) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        loop="none",  # the loop is ours (uvloop), shared by both servers
        interface="asgi3",  # the admin port's app is a bound method: no guessing
        http=ProxyHttpProtocol.limited(limits),
        ws="none",
        lifespan="off",  # the proxy's startup and shutdown run once, in `serve`
        proxy_headers=False,  # the proxy decides whom to trust (PROXY_TRUSTED_PROXIES)
        access_log=False,  # the proxy writes its own access log, with request ids
        server_header=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )


def listeners(app: ProxyApp, host: str, port: int) -> list[Listener]:
    """Bind the public port and, when configured, the admin port (OSError if one is taken)."""
    settings = app.settings
    limits = ConnectionLimits(
        settings.header_timeout, settings.idle_timeout, connection_cap(settings)
    )
    bound = [Listener(bind(host, port), _config(app, limits))]
    if settings.admin_port is not None:
        if not _is_loopback(settings.admin_host):
            log.warning("the admin port listens beyond loopback", host=settings.admin_host)
        try:
            admin_sock = bind(settings.admin_host, settings.admin_port)
        except OSError:
            bound[0].sock.close()
            raise
        admin_limits = ConnectionLimits(
            settings.header_timeout, settings.idle_timeout, ADMIN_MAX_CONNECTIONS
        )
        bound.append(Listener(admin_sock, _config(app.admin_port_app, admin_limits)))
    return bound


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve(app: ProxyApp, bound: list[Listener]) -> int:
    """Start the proxy, serve every listener until a signal, stop; the exit status."""
    try:
        await app.startup()
    except Exception as error:
        log.error("proxy startup failed", error=str(error))
        return STARTUP_FAILED
    servers = [_Server(listener.config) for listener in bound]

    def end_all() -> None:
        for server in servers:
            server.should_exit = True

    def on_signal() -> None:
        for server in servers:
            server.force_exit = server.should_exit  # a second signal: stop waiting
        end_all()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    tasks = [
        asyncio.create_task(server.serve(sockets=[listener.sock]))
        for server, listener in zip(servers, bound, strict=True)
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        end_all()  # one server ended (a signal, or it failed): the others follow, gracefully
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, BaseException):
                log.error("a server of the proxy failed", error=repr(outcome))
    finally:
        await app.shutdown()
    return 0


def run(host: str, port: int) -> None:
    """The process's entry point: settings from the environment, then `serve` on uvloop."""
    try:
        app = create_app(ProxySettings())
    except ValueError as error:  # settings, admin tokens: nothing started, say why
        log.error("proxy settings refused", error=str(error))
        sys.exit(SETTINGS_REFUSED)
    try:
        bound = listeners(app, host, port)
    except OSError as error:
        log.error("proxy cannot listen", error=str(error), host=host, port=port)
        sys.exit(STARTUP_FAILED)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        status = runner.run(serve(app, bound))
    sys.exit(status)
