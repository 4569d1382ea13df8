"""Fixtures of the toolkit's serverless tests (function and bucket targets, the emulator, the
stream poller; the example's polls functions are tested in tests/serverless): the AWS emulator
(moto in server mode, a real process started as `strangler up` starts it) and the proxy
suite's real proxy processes.

Every test here that talks to "AWS" talks to moto: DynamoDB, DynamoDB Streams and S3 as moto
models them, never the real services (docs/serverless.md says what that leaves unverified).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from strangler.runtime.processes import ManagedProcess, free_port, start
from strangler.serverless.emulator import EMULATOR, HEALTH_PATH, emulator_command
from tests.proxy.conftest import client, proxy_factory

__all__ = ["client", "emulator", "proxy_factory"]


@dataclass
class Emulator:
    url: str
    process: ManagedProcess


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """A fresh moto server for a module's tests, stopped (its whole group) afterwards."""
    pytest.importorskip("moto", reason="the serverless extra (moto) is not installed")
    port = free_port()
    logs = tmp_path_factory.mktemp("emulator")
    process = start(
        EMULATOR, emulator_command(port), {}, f"http://127.0.0.1:{port}{HEALTH_PATH}",
        Path(logs) / "aws-emulator.log",
    )  # fmt: skip
    process.wait_healthy(timeout=60)
    yield Emulator(f"http://127.0.0.1:{port}", process)
    process.stop(grace=3)


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> Emulator:
    """This process's boto3 clients go to the emulator, with credentials it accepts."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, os.environ.get(name, "testing"))
    return emulator
