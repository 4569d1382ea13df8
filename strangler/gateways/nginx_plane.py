"""The live nginx data plane: one nginx process serving a rendered table, reloaded gracefully.

`NginxPlane` writes `render_live`'s configuration into its folder (nginx's prefix: pid, logs and
temporary files live there too), starts nginx in the foreground of its own process group, and on
`reload` checks the new configuration with `nginx -t` before it replaces the one in force, then
sends SIGHUP. A reload returns only once every old worker has exited: from then on no request is
served by the previous table, which is what a cutover needs before it freezes a context's writes
at the Python proxy. A configuration nginx refuses leaves the previous one serving.

This module must never decide where a route goes (that is `nginx_live`) nor edit a route table.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Mapping
from pathlib import Path

import psutil

from strangler.gateways.nginx_live import render_live
from strangler.gateways.settings import GatewaySettings
from strangler_proxy.table import RouteTable

CONFIGURATION = "nginx.conf"
_CANDIDATE = "nginx.candidate.conf"
_SYSTEM_FOLDERS = "/usr/sbin:/usr/local/sbin:/usr/local/nginx/sbin"
_INSTALL_HINT = (
    "nginx is not installed (not on PATH nor in /usr/sbin): install it with"
    " `apt-get install nginx` (Debian, Ubuntu), `brew install nginx` (macOS) or your system's"
    " package manager"
)


class NginxNotInstalled(RuntimeError):
    """No nginx binary was found; the message says how to install one."""


class ConfigurationRefused(RuntimeError):
    """`nginx -t` refused a configuration; the one in force keeps serving."""


class PlaneFailed(RuntimeError):
    """nginx exited, or did not become healthy or finish a reload in time."""


SEARCH_PATH_VARIABLE = "STRANGLER_NGINX_PATH"


def set_cpu_policy(settings: GatewaySettings, pid: int = 0) -> None:
    """Put process `pid` (0: this one) under the plane's scheduling policy (the setting
    `cpu_policy`); processes it forks later inherit it. A no-op where the system has no
    SCHED_BATCH, or for "normal". A refusal (a process gone, a sandbox forbidding the call)
    leaves the system's policy: it costs CPU, never a request."""
    policy = getattr(os, "SCHED_BATCH", None)
    if settings.cpu_policy == "batch" and policy is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(pid, policy, os.sched_param(0))


def find_nginx(search_path: str | None = None) -> str:
    """The nginx binary on `search_path` (default: `STRANGLER_NGINX_PATH` if set, else PATH,
    then the sbin folders), or NginxNotInstalled saying how to install it."""
    search_path = search_path or os.environ.get(SEARCH_PATH_VARIABLE) or None
    if search_path is not None:
        found = shutil.which("nginx", path=search_path)
    else:
        found = shutil.which("nginx") or shutil.which("nginx", path=_SYSTEM_FOLDERS)
    if found is None:
        raise NginxNotInstalled(_INSTALL_HINT)
    return found


class NginxPlane:
    """nginx serving the routes at rest of a table, the rest through the Python proxy."""

    def __init__(
        self,
        folder: Path,
        upstreams: Mapping[str, str],
        proxy_url: str,
        settings: GatewaySettings | None = None,
        binary: str | None = None,
    ) -> None:
        self.folder = folder.resolve()
        self.upstreams = dict(upstreams)
        self.proxy_url = proxy_url
        self.settings = settings or GatewaySettings()
        self.binary = binary or find_nginx()
        self.configuration = ""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.listen_host}:{self.settings.listen_port}"

    def render(self, table: RouteTable, migrating: Collection[str] = ()) -> str:
        return render_live(table, self.upstreams, self.proxy_url, migrating, self.settings)

    def start(
        self, table: RouteTable, migrating: Collection[str] = (), timeout: float = 15
    ) -> None:
        """Render, check and write the configuration, start nginx and wait for /healthz."""
        self.install(self.render(table, migrating))
        log = open(self.folder / "nginx.out", "ab")  # noqa: SIM115 - nginx holds it open
        self._process = subprocess.Popen(
            [self.binary, *self._arguments(CONFIGURATION), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        # The master first, so that the workers it forks from now on inherit the policy, then
        # the workers it may have forked already.
        set_cpu_policy(self.settings, self._process.pid)
        with contextlib.suppress(psutil.Error):  # exited at once: the wait below says why
            for worker in psutil.Process(self._process.pid).children():
                set_cpu_policy(self.settings, worker.pid)
        deadline = time.monotonic() + timeout
        while not self.is_healthy():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise PlaneFailed(f"nginx did not start: {self._log_tail()}")
            time.sleep(0.05)

    def reload(
        self, table: RouteTable, migrating: Collection[str] = (), timeout: float | None = None
    ) -> None:
        """Serve `table` from now on; return once no old worker is left serving the previous one."""
        master = self._master()
        old = {child.pid for child in master.children()}
        self.install(self.render(table, migrating))
        master.send_signal(signal.SIGHUP)
        limit = timeout if timeout is not None else self.settings.shutdown_timeout + 10
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            children = {child.pid for child in master.children()}
            if children and not children & old:
                return
            if not master.is_running():
                raise PlaneFailed(f"nginx exited during a reload: {self._log_tail()}")
            time.sleep(0.02)
        raise PlaneFailed(f"old nginx workers still serving after {limit:.0f} s")

    def stop(self, grace: float = 10) -> None:
        """Graceful stop (SIGQUIT: requests in flight finish), then SIGKILL after `grace`."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGQUIT)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def is_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    @property
    def pid(self) -> int:
        return self._master().pid

    def _master(self) -> psutil.Process:
        """The master this plane started, else the one its pid file names (started by
        another process: `strangler up`'s supervisor)."""
        if self._process is None:
            try:
                return psutil.Process(int((self.folder / "nginx.pid").read_text().strip()))
            except (OSError, ValueError, psutil.Error) as error:
                raise PlaneFailed(f"nginx is not running: {error}") from error
        if self._process.poll() is not None:
            raise PlaneFailed("nginx is not running")
        return psutil.Process(self._process.pid)

    def _arguments(self, configuration: str) -> list[str]:
        return ["-p", f"{self.folder}/", "-c", str(self.folder / configuration)]

    def install(self, configuration: str) -> None:
        """Check a configuration with `nginx -t`, then put it in force (atomically)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        candidate = self.folder / _CANDIDATE
        candidate.write_text(configuration)
        checked = subprocess.run(
            [self.binary, "-t", "-q", *self._arguments(_CANDIDATE)],
            capture_output=True,
            text=True,
            check=False,
        )
        if checked.returncode != 0:
            raise ConfigurationRefused(checked.stderr.strip() or checked.stdout.strip())
        os.replace(candidate, self.folder / CONFIGURATION)
        self.configuration = configuration

    def _log_tail(self, lines: int = 10) -> str:
        found = []
        for name in ("nginx.out", str(self.settings.error_log)):
            path = self.folder / name
            if path.exists():
                found.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(found)
