"""The AWS emulator of a system whose contexts are served as functions, and their environment.

Locally, DynamoDB, DynamoDB Streams and S3 are moto in server mode (moto's application, kept
durable and atomic by `strangler.serverless.emulator_server`), one supervised process named
`aws-emulator` and always labelled an emulator: what works against it is verified against
moto's model of AWS, not against AWS (docs/serverless.md). Its readiness is moto's own
`/moto-api/`. Every function process (the proxy's workers, the stream poller)
gets the same environment: the emulator's endpoint, a region, credentials moto accepts (never
real ones; those set in the environment pass through), the table's and the bucket's names and
the context's `env`. This module must never start a process nor call AWS.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from strangler.workspace import Workspace
from strangler.workspace.model import ServerlessSpec

EMULATOR = "aws-emulator"
EMULATOR_NOTE = "moto: an AWS emulator, not AWS"
HEALTH_PATH = "/moto-api/"
DEFAULT_REGION = "us-east-1"
PLACEHOLDER_CREDENTIAL = "testing"


def emulator_command(port: int, host: str = "127.0.0.1", writes: Path | None = None) -> list[str]:
    """moto's server made durable and atomic (`strangler.serverless.emulator_server`): its
    writes kept in `writes` and replayed at start (None: in memory only)."""
    argv = [sys.executable, "-m", "strangler.serverless.emulator_server", "-H", host]
    argv += ["-p", str(port)]
    return argv + (["--writes", str(writes)] if writes is not None else [])


def serverless_of(workspace: Workspace, context: str) -> ServerlessSpec:
    spec = workspace.contexts[context].serverless
    if spec is None:
        raise ValueError(f"{context} is not declared serverless ([contexts.{context}.serverless])")
    return spec


def table_definition(workspace: Workspace, context: str) -> dict[str, Any] | None:
    """The `create_table` arguments the context's `table` names (imported, never called)."""
    spec = serverless_of(workspace, context)
    if spec.table is None:
        return None
    definition = workspace.resolve(spec.table)
    if not isinstance(definition, dict):
        raise ValueError(f"{spec.table} is a {type(definition).__name__}, not a dict")
    return definition


def function_environment(
    workspace: Workspace, context: str, endpoint: str | None
) -> dict[str, str]:
    """What every function of `context` reads (the interface of docs/serverless.md); `endpoint`
    None: real AWS (no endpoint, the environment's own credentials)."""
    spec = serverless_of(workspace, context)
    prefix = context.upper()
    env: dict[str, str] = {
        "PYTHONPATH": workspace.python_path(),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
    }
    if endpoint is not None:
        env["AWS_ENDPOINT_URL"] = endpoint
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env[name] = os.environ.get(name, PLACEHOLDER_CREDENTIAL)
    definition = table_definition(workspace, context)
    if definition is not None:
        env[f"{prefix}_TABLE"] = str(definition["TableName"])
    if spec.bucket is not None:
        env[f"{prefix}_BUCKET"] = spec.bucket
    return {**env, **spec.env}
