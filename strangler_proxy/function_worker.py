"""One function worker: a process that imports a handler once and invokes it event after event.

`python -P .../function_worker.py PACKAGE.MODULE:ATTRIBUTE` (run as a file, so that a worker
imports only the handler, not the proxy; the current folder comes first on its import path, as
with `python -m`) reads frames from stdin
and writes frames to the stdout it was started with (a frame: a 4-byte big-endian length, then
that many bytes of JSON). Its first frame says it is ready and how long the import took; then,
per `{"event": ..., "request_id": ..., "deadline": epoch}` it answers `{"result": ...}` or
`{"error": ...}` with the seconds the handler ran. What the handler prints goes to stderr (the
log), never into the frames. This module must never import anything of the toolkit nor answer HTTP.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import sys
import time
import traceback
from typing import IO, Any

HEADER = struct.Struct(">I")


def write_frame(stream: IO[bytes], message: dict[str, Any]) -> None:
    data = json.dumps(message).encode("utf-8")
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next frame, or None at the end of the input."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (length,) = HEADER.unpack(head)
    found: dict[str, Any] = json.loads(stream.read(length))
    return found


class InvocationContext:
    """The part of Lambda's context object handlers use."""

    def __init__(self, function_name: str, request_id: str, deadline: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.aws_request_id = request_id
        self.memory_limit_in_mb = 0
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def resolve(import_path: str) -> Any:
    # strangler.plumbing.imports.resolve, again: this file imports nothing of the toolkit.
    module_name, _, attribute = import_path.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


def invoke(handler: Any, name: str, frame: dict[str, Any]) -> dict[str, Any]:
    context = InvocationContext(name, frame.get("request_id", ""), frame.get("deadline", 0.0))
    started = time.perf_counter()
    reply: dict[str, Any]
    try:
        result = handler(frame["event"], context)
    except Exception as error:  # the handler's own failure is the caller's answer, not ours
        traceback.print_exc(file=sys.stderr)
        reply = {"error": f"{type(error).__name__}: {error}"}
    else:
        try:
            json.dumps(result)
            reply = {"result": result}
        except (TypeError, ValueError) as error:
            reply = {"error": f"the result is not JSON: {error}"}
    reply["seconds"] = time.perf_counter() - started
    return reply


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -P function_worker.py MODULE:ATTRIBUTE", file=sys.stderr)
        return 2
    sys.path.insert(0, os.getcwd())
    frames_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the handler's prints go to the log
    frames_in = sys.stdin.buffer
    started = time.perf_counter()
    try:
        handler = resolve(argv[1])
    except Exception as error:  # importing runs the user's code
        write_frame(frames_out, {"ready": False, "error": f"{type(error).__name__}: {error}"})
        return 1
    write_frame(frames_out, {"ready": True, "import_seconds": time.perf_counter() - started})
    while (frame := read_frame(frames_in)) is not None:
        write_frame(frames_out, invoke(handler, argv[1], frame))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
