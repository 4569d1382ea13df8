"""`strangler up` refuses what cannot work before it writes or starts anything, and says why in
one line: a stage that does not exist, a port another process holds."""

from __future__ import annotations

import socket
from pathlib import Path

from strangler.runtime.processes import free_port
from tests.support.command_line import strangler


def test_a_stage_that_does_not_exist_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    refused = strangler(tmp_path, "up", "--stage", "9", "--port", str(free_port()))
    assert refused.returncode == 1
    assert "there is no stage 9; stages are 0..5" in refused.stdout
    assert "Traceback" not in refused.stdout + refused.stderr
    assert not (tmp_path / ".strangler").exists()


def test_a_taken_port_is_refused_at_once_naming_what_holds_it(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        refused = strangler(tmp_path, "up", "--port", str(port), "--scale", "0.02", timeout=60)
    assert refused.returncode == 1
    assert f"port {port} is taken by pid" in refused.stdout
    assert "Traceback" not in refused.stdout + refused.stderr
    assert not (tmp_path / ".strangler" / "run.json").exists()


def test_a_port_that_is_no_port_is_refused(tmp_path: Path) -> None:
    refused = strangler(tmp_path, "up", "--port", "70000")
    assert refused.returncode == 1 and "is not a TCP port" in refused.stdout


def test_a_missing_nginx_is_refused_in_one_line_saying_how_to_install_it(tmp_path: Path) -> None:
    empty = tmp_path / "no-nginx-here"
    empty.mkdir()
    for command in ("up", "demo"):
        refused = strangler(
            tmp_path, command, "--data-plane", "nginx", "--port", str(free_port()),
            env={"STRANGLER_NGINX_PATH": str(empty)},
        )  # fmt: skip
        assert refused.returncode == 1
        assert "nginx is not installed" in refused.stdout
        assert "apt-get install nginx" in refused.stdout
        assert "Traceback" not in refused.stdout + refused.stderr
    assert not (tmp_path / ".strangler").exists()
    assert not (tmp_path / "strangler-demo").exists()


def test_an_unknown_data_plane_is_refused(tmp_path: Path) -> None:
    refused = strangler(tmp_path, "up", "--data-plane", "envoy", "--port", str(free_port()))
    assert refused.returncode == 1
    assert "--data-plane envoy is not one of python, nginx" in refused.stdout
    assert not (tmp_path / ".strangler").exists()


def test_a_bad_gateway_setting_is_refused_before_nginx_starts(tmp_path: Path) -> None:
    refused = strangler(
        tmp_path, "up", "--data-plane", "nginx", "--port", str(free_port()),
        env={"STRANGLER_GATEWAY_CPU_POLICY": "fastest"},
    )  # fmt: skip
    assert refused.returncode == 1
    assert "STRANGLER_GATEWAY_CPU_POLICY: Input should be 'batch' or 'normal'" in refused.stdout
    assert "Traceback" not in refused.stdout + refused.stderr
    assert not (tmp_path / ".strangler").exists()
