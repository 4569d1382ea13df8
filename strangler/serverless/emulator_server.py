"""The AWS emulator's process: moto's server, made to outlive a crash and to be atomic.

    python -m strangler.serverless.emulator_server --port 4566 --writes .strangler/aws/writes.jsonl

It serves moto's own application (DynamoDB, DynamoDB Streams, S3: `python -m moto.server` is
the same thing without these changes), with three changes for a system that runs for hours and
is killed on purpose:

- **Durable.** moto keeps everything in memory. Here every request that may change something
  (any method but GET and HEAD, except DynamoDB's and DynamoDB Streams' reads) is appended to
  the `--writes` file, one JSON line, before it runs; on start the file is replayed in order,
  in process, before the port opens, so a restarted emulator holds what it held: items, stream
  records with their sequence numbers (moto numbers a shard's records by their position), the
  bookkeeping, the bucket's pages. A request killed half-way is replayed whole: on DynamoDB
  that is one atomic write, and the writer never saw an answer.
- **Writes one at a time.** moto's backends take no lock. Requests that change something run
  one at a time (reads run alongside), so a transaction is atomic against other writes as it is
  on AWS, and the order they ran in is the order they are written down and replayed in.
- **A transaction copies no table.** moto 5 keeps a deep copy of a table for every action of
  a `TransactWriteItems`, to put back on failure, the table's stream included: 99 actions on a
  table with a few thousand stream records took more than 10 s, and grew with the stream. Here
  the items the actions name are read first and, on failure, put back, and the stream records
  the transaction added are dropped (its records are numbered by position, so the numbering
  stays whole). Writes run one at a time, so nothing else changed those items meanwhile.

What it still is: an emulator (docs/serverless.md, "Locally it is an emulator"); the file grows
with every write and is replayed whole at each start. This module must never serve anything
but moto's application.
"""

from __future__ import annotations

import argparse
import base64
import copy
import io
import json
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

READS = frozenset(
    "DynamoDB_20120810." + operation
    for operation in (
        "GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables",
        "DescribeTimeToLive", "DescribeContinuousBackups", "ListTagsOfResource",
        "DescribeEndpoints", "DescribeLimits", "TransactGetItems",
    )
) | frozenset(
    "DynamoDBStreams_20120810." + operation
    for operation in ("DescribeStream", "GetShardIterator", "GetRecords", "ListStreams")
)  # fmt: skip


def changes_something(environ: Environ) -> bool:
    """Whether a request may change the emulated account (unknown operations are writes)."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target is not None:
        return target not in READS
    return environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD", "OPTIONS")


def _body(environ: Environ) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        return bytes(stream.read(int(length)))
    return bytes(stream.read()) if environ.get("wsgi.input_terminated") else b""


class DurableWrites:
    """WSGI middleware: writes one at a time, each written down before it runs."""

    def __init__(self, app: WsgiApp, writes: Path | None) -> None:
        self.app, self.writes = app, writes
        self.lock = threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not changes_something(environ):
            return self.app(environ, start_response)
        body = _body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        with self.lock:
            if self.writes is not None:
                self._write_down(environ, body)
            answer = self.app(environ, start_response)
            try:
                return [b"".join(answer)]  # the whole answer, while no other write runs
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()

    def _write_down(self, environ: Environ, body: bytes) -> None:
        headers = {
            name[5:].replace("_", "-").title(): value
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(name):
                headers[name.replace("_", "-").title()] = environ[name]
        line = {
            "method": environ["REQUEST_METHOD"],
            "uri": environ.get("RAW_URI") or environ.get("REQUEST_URI") or _uri(environ),
            "headers": headers,
            "body": base64.b64encode(body).decode("ascii"),
        }
        assert self.writes is not None
        with self.writes.open("a", encoding="utf-8") as written:
            written.write(json.dumps(line) + "\n")


def _uri(environ: Environ) -> str:
    from urllib.parse import quote

    query = environ.get("QUERY_STRING")
    return quote(environ.get("PATH_INFO", "/")) + (f"?{query}" if query else "")


def replay(app: WsgiApp, writes: Path) -> int:
    """Run every written-down request again, in order, in process; how many. A last line cut
    short by a kill is dropped (its writer never saw an answer)."""
    from werkzeug.test import Client

    if not writes.exists():
        return 0
    client = Client(app)
    count = 0
    for text in writes.read_text(encoding="utf-8").splitlines():
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            continue
        client.open(
            line["uri"], method=line["method"], headers=line["headers"],
            data=base64.b64decode(line["body"]),
        )  # fmt: skip
        count += 1
    return count


_in_transaction = threading.local()


class _TablesNotCopied:
    """Stands in for the `copy` module inside moto's DynamoDB backend: during a transaction, a
    table is not deep-copied (its transaction is undone as `patch_transactions` says); any
    other value is copied as usual."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        from moto.dynamodb.models.table import Table

        if getattr(_in_transaction, "active", False) and isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def patch_transactions() -> None:
    """A refused `TransactWriteItems` is undone by putting back the items it touched and
    dropping the stream records it added, instead of moto's deep copy of every table it
    touches, once per action (writes run one at a time here, so nothing else can have
    changed them meanwhile)."""
    from moto.dynamodb import models

    original = models.DynamoDBBackend.transact_write_items
    if getattr(original, "is_patched", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        before = _touched(self, transact_items)
        streams = {
            name: len(table.stream_shard.items)
            for name in {name for name, _, _ in before}
            if (table := self.tables.get(name)) is not None and table.stream_shard is not None
        }
        _in_transaction.active = True
        try:
            original(self, transact_items)
        except BaseException:
            for name, key, attributes in before:
                if attributes is None:
                    self.delete_item(name, key)
                else:
                    self.put_item(name, attributes)
            for name, length in streams.items():
                shard = self.tables[name].stream_shard
                del shard.items[length:]
            raise
        finally:
            _in_transaction.active = False

    transact_write_items.is_patched = True  # type: ignore[attr-defined]
    models.copy = _TablesNotCopied()  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _touched(backend: Any, actions: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    """(table, key, its item's attributes or None) of every item the actions name, as now."""
    found = []
    for action in actions:
        kind, operation = next(iter(action.items()))
        table = backend.tables.get(operation.get("TableName"))
        if table is None:
            continue
        if kind == "Put":
            names = [table.hash_key_attr, *([table.range_key_attr] if table.range_key_attr else [])]
            key = {name: operation["Item"][name] for name in names if name in operation["Item"]}
        else:
            key = operation.get("Key")
        if not key:
            continue
        try:
            item = backend.get_item(table.name, key)
        except Exception:  # a key moto refuses: the transaction fails on it before any write
            continue
        found.append((table.name, key, None if item is None else item.to_json()["Attributes"]))
    return found


def application(writes: Path | None) -> DurableWrites:
    """moto's application with the changes above, its writes replayed from `writes`."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    patch_transactions()
    moto = DomainDispatcherApplication(create_backend_app)
    if writes is not None:
        writes.parent.mkdir(parents=True, exist_ok=True)
        replay(moto, writes)
    return DurableWrites(moto, writes)


def main(argv: list[str] | None = None) -> None:
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(
        prog="python -m strangler.serverless.emulator_server", description=__doc__
    )
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument(
        "--writes", type=Path, default=None,
        help="where writes are kept and replayed from (none: in memory only)",
    )  # fmt: skip
    arguments = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(arguments.port))
    app = application(arguments.writes)
    run_simple(
        arguments.host, arguments.port, app, threaded=True, request_handler=MotoRequestHandler
    )


if __name__ == "__main__":
    main()
