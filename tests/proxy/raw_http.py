"""HTTP/1.1 over a raw socket, for the tests of what a client can do to a connection itself.

httpx cannot send a head a byte at a time, omit `Host`, send two, or hold a connection open
without a request; these helpers can, and read exactly one answer (by its `Content-Length`)
so that a kept-alive connection stays usable.
"""

from __future__ import annotations

import json
import select
import socket
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/problem+json"
        document: dict[str, Any] = json.loads(self.body)
        assert document["status"] == self.status
        assert document["request_id"] == self.headers["x-request-id"]
        return document


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_answer(connection: socket.socket) -> Answer:
    """One response: its head, then as many body bytes as it declares."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, f"the connection closed before a whole answer: {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, "the connection closed in the middle of a body"
        body += chunk
    return Answer(int(status_line.split(" ")[1]), headers, body[:length])


def is_closed_by_peer(connection: socket.socket) -> bool:
    """Wait (up to the socket's timeout) for the peer to close; True if it did, sending nothing.

    False when data arrived instead, or nothing happened before the timeout.
    """
    try:
        return connection.recv(65536) == b""
    except (TimeoutError, ConnectionResetError):
        return False


def has_data(connection: socket.socket) -> bool:
    """Whether bytes (or the peer's close) are waiting to be read, without blocking."""
    readable, _, _ = select.select([connection], [], [], 0)
    return bool(readable)


def get(path: str = "/api/threads", host: str = "proxy.test", **headers: str) -> bytes:
    fields = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{fields}\r\n".encode()
