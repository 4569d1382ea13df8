"""The nginx data plane kept in step with the migration's durable state.

`strangler up --data-plane nginx` runs two processes of this module beside the Python proxy:

- `serve` renders nginx's configuration from the durable state (`strangler.state`), checks it
  with `nginx -t`, and then becomes nginx (exec, same pid): whenever nginx (re)starts, the first
  request it accepts is served by the table and migration state on disk at that moment;
- `control`, the control loop, watches the state file; whenever what nginx should serve changes
  (the routes, or which contexts are under migration) it renders, checks, installs and reloads
  nginx gracefully (returning once every old worker exited), then records the state revision it
  applied in `applied.json`. The conductor waits for that acknowledgement before it freezes a
  context's writes at the Python proxy (`wait_applied`).

Both render under one lock, reading the state inside it, so the configuration on disk is never
older than one rendered before it. A context is under migration (all its routes through the
Python proxy) from the moment a move of it is recorded until the move is done, or while a write
freeze of it is recorded. This module must never change the migration state nor decide where a
route goes (that is `nginx_live`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from strangler.gateways.nginx_plane import CONFIGURATION, NginxPlane, find_nginx, set_cpu_policy
from strangler.gateways.settings import GatewaySettings
from strangler.state import MigrationState, StateError, StateFile
from strangler.workspace import find_workspace
from strangler.workspace.stages import Migration
from strangler_proxy.table import RouteTable

APPLIED = "applied.json"
_LOCK = "render.lock"


class PlaneSettings(BaseSettings):
    """Where the plane lives and what it fronts (set by `strangler.runtime.launch`)."""

    model_config = SettingsConfigDict(env_prefix="STRANGLER_PLANE_", extra="ignore")

    folder: Path  # nginx's prefix: configuration, pid, logs, and `applied.json`
    state_path: Path  # the migration's durable state
    upstreams: dict[str, str]  # the monolith and every service, by name
    proxy_url: str  # the Python proxy's own (internal) port
    control_port: int = 0  # where the control loop answers /healthz (0: nowhere)
    poll_seconds: float = 0.05


class Applied(BaseModel):
    """What the control loop last put in force, by the state revision it rendered."""

    revision: int
    routes_version: int
    migrating: list[str]
    nginx_pid: int
    at: float


class PlaneNotApplied(RuntimeError):
    """nginx did not apply a state revision in time."""


def migrating(state: MigrationState, migration: Migration) -> set[str]:
    """The contexts whose every route goes through the Python proxy: the one a move under way
    extracts or gives back, any with a write freeze recorded (live or not yet cleared), and
    every context served as functions (nginx cannot invoke a function nor sign a read of a
    bucket: the Python proxy's target kinds do)."""
    found = {name for name, context in state.contexts.items() if context.freeze is not None}
    migration = migration.retargeted(state.targets)
    routes = (state.routes or {}).get("routes", [])
    found |= {
        route["context"]
        for route in routes
        if route.get("context") in migration.serverless and route.get("mode") != "monolith"
    }
    moving = state.moving
    if moving is not None:
        context = migration.stage(max(moving.from_stage, moving.to_stage)).extracts
        if context is not None:
            found.add(context)
    return found


def read_applied(folder: Path) -> Applied | None:
    try:
        return Applied.model_validate_json((folder / APPLIED).read_text())
    except (OSError, ValidationError):
        return None


def wait_applied(
    read: Callable[[], Applied | None],
    revision: int,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Applied:
    """Wait until the plane acknowledges a state revision >= `revision` (every request from
    then on is served by a configuration rendered from it or a later one); PlaneNotApplied
    with what it last applied when it does not within `timeout` seconds."""
    deadline = clock() + timeout
    while True:
        found = read()
        if found is not None and found.revision >= revision:
            return found
        if clock() >= deadline:
            last = "nothing" if found is None else f"revision {found.revision}"
            raise PlaneNotApplied(
                f"nginx has not applied the migration state's revision {revision} within"
                f" {timeout:.0f} s (it applied {last}): see the nginx-control and nginx logs"
            )
        sleep(0.05)


@dataclass
class Rendered:
    configuration: str
    revision: int
    routes_version: int
    migrating: list[str]


class Renderer:
    """Renders the durable state into nginx's configuration, one renderer at a time."""

    def __init__(self, settings: PlaneSettings, gateway: GatewaySettings, binary: str) -> None:
        self.settings = settings
        self.state = StateFile(settings.state_path)
        self.migration = find_workspace().migration()
        self.plane = NginxPlane(
            settings.folder, settings.upstreams, settings.proxy_url, gateway, binary
        )

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.settings.folder.mkdir(parents=True, exist_ok=True)
        with open(self.settings.folder / _LOCK, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def render(self) -> tuple[Rendered, RouteTable, list[str]]:
        """The configuration of the state on disk now (call it under the lock)."""
        state = self.state.read()
        if state.routes is None:
            raise StateError(f"{self.settings.state_path} holds no routes yet")
        table = RouteTable.model_validate(state.routes)
        moving = sorted(migrating(state, self.migration))
        text = self.plane.render(table, moving)
        return Rendered(text, state.revision, state.routes_version, moving), table, moving


def serve() -> None:
    """Render from the durable state, install, and become nginx in the foreground."""
    settings = PlaneSettings()  # type: ignore[call-arg]
    binary = find_nginx()
    renderer = Renderer(settings, GatewaySettings(), binary)
    with renderer.locked():
        rendered, _, _ = renderer.render()
        renderer.plane.install(rendered.configuration)
    folder = settings.folder
    set_cpu_policy(renderer.plane.settings)  # nginx keeps it across the exec and its forks
    os.execv(binary, [binary, "-p", f"{folder}/", "-c", str(folder / CONFIGURATION),
                      "-g", "daemon off;"])  # fmt: skip


class ControlLoop:
    """Keeps the nginx in force equal to the render of the durable state, and says so."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self.applied: Applied | None = None
        self.in_force: str | None = None  # what this loop reloaded nginx with
        self.nginx_pid: int | None = None
        self.failure: str | None = None

    def step(self) -> bool:
        """Apply the state on disk if nginx does not serve it yet; True when in step."""
        renderer = self.renderer
        with renderer.locked():
            rendered, table, moving = renderer.render()
            pid = _nginx_pid(renderer.settings.folder)
            if pid is None:
                return False  # nginx is (re)starting; its start renders the state itself
            if rendered.configuration != self.in_force or pid != self.nginx_pid:
                began = time.monotonic()
                renderer.plane.reload(table, moving)
                self.in_force, self.nginx_pid = rendered.configuration, pid
                _log(
                    "reloaded", revision=rendered.revision, migrating=moving, nginx_pid=pid,
                    seconds=round(time.monotonic() - began, 3),
                )  # fmt: skip
            if self.applied is None or self.applied.revision != rendered.revision:
                self.applied = Applied(
                    revision=rendered.revision, routes_version=rendered.routes_version,
                    migrating=rendered.migrating, nginx_pid=pid, at=time.time(),
                )  # fmt: skip
                _write_json(renderer.settings.folder / APPLIED, self.applied.model_dump_json())
        return True

    def run(self, should_stop: Callable[[], bool]) -> None:
        stamp: object = None
        settings = self.renderer.settings
        while not should_stop():
            now = (self.renderer.state.stamp(), _nginx_pid(settings.folder))
            if now != stamp:
                try:
                    if self.step():
                        stamp, self.failure = now, None
                except Exception as error:  # told, and tried again
                    self.failure = f"{type(error).__name__}: {error}"
                    _log("apply_failed", detail=self.failure)
                    time.sleep(0.5)
            time.sleep(settings.poll_seconds)


def control() -> None:
    settings = PlaneSettings()  # type: ignore[call-arg]
    loop = ControlLoop(Renderer(settings, GatewaySettings(), find_nginx()))
    # An acknowledgement ahead of the state is of another state (the folder's state was
    # deleted and begun anew): never let it stand for this one.
    found = read_applied(settings.folder)
    if found is not None and found.revision > loop.renderer.state.read().revision:
        (settings.folder / APPLIED).unlink(missing_ok=True)
    stopping = threading.Event()
    if settings.control_port:
        _answer_health(loop, settings.control_port)
    _log("started", folder=str(settings.folder))
    try:
        loop.run(stopping.is_set)
    except KeyboardInterrupt:
        stopping.set()


def _answer_health(loop: ControlLoop, port: int) -> None:
    """/healthz: 200 with what is applied once the loop is in step, 503 before or on failure."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ready = loop.applied is not None and loop.failure is None
            body = json.dumps(
                {
                    "applied": loop.applied.model_dump() if loop.applied else None,
                    "failure": loop.failure,
                }
            ).encode()
            self.send_response(200 if ready and self.path == "/healthz" else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def nginx_targets(folder: Path, request_ids: list[str], patience: float = 3.0) -> dict[str, str]:
    """Who answered each of these requests, by nginx's JSON access log (`target`: an upstream,
    or the Python proxy); waits up to `patience` seconds for the log's buffer to be flushed."""
    wanted, found = set(request_ids), {}
    log = folder / str(GatewaySettings().access_log or "access.log")
    deadline = time.monotonic() + patience
    while True:
        with contextlib.suppress(OSError):
            for line in log.read_text(errors="replace").splitlines()[-5000:]:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    entry = json.loads(line)
                    if entry["request_id"] in wanted:
                        found[entry["request_id"]] = str(entry["target"])
        if wanted <= set(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _nginx_pid(folder: Path) -> int | None:
    """The running nginx master's pid (from its pid file), or None."""
    try:
        pid = int((folder / "nginx.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _write_json(path: Path, text: str) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_text(text)
    os.replace(partial, path)


def _log(event: str, **fields: object) -> None:
    line = json.dumps({"at": time.time(), "event": f"nginx_control.{event}", **fields})
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    {"serve": serve, "control": control}[sys.argv[1]]()
