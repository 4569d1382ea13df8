"""Turning a raw request target into the one canonical path that routing and forwarding both use.

The matcher and the upstream must never disagree about which resource a request names, so the
proxy decodes the raw path exactly once, rejects what has no single meaning, and forwards the
canonical form it matched on (re-encoded), never the client's raw bytes. The rules, in order
(docs/proxy.md repeats them for operators):

1. The target must start with `/` and be printable ASCII; anything else is rejected.
2. Percent-escapes must be well formed (`%` + two hex digits) and are decoded once, as UTF-8.
3. An encoded slash (`%2F`), a backslash (raw or `%5C`) and any control character (raw or
   encoded, including NUL) are rejected: each has a different meaning on different servers.
4. Repeated slashes collapse to one.
5. Dot segments (`.`, `..`, also when encoded as `%2E`) are resolved; `..` above the root is
   rejected.
6. The trailing slash is kept in the forwarded path but ignored for matching, and matching ignores
   case; both therefore always land on the same route as their canonical twin.

This module must never consult the route table or perform I/O: it is pure string handling.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import quote

_HEX = frozenset(b"0123456789abcdefABCDEF")
_PRINTABLE = re.compile(rb"[\x21-\x7e]*")
# Characters that stay literal when the canonical path is re-encoded for the upstream
# (RFC 3986 pchar minus '%'), so the upstream decodes exactly what the matcher saw.
_SAFE_PATH_CHARS = "/:@!$&'()*+,;=-._~"


class UnsafePath(ValueError):
    """The request target cannot be given one unambiguous meaning; the proxy answers 400."""


@dataclass(frozen=True)
class CanonicalPath:
    """A request path after normalisation.

    `decoded` is the path as text after rules 1-5; `match_key` is what routing compares against
    (no trailing slash, lower case); `forward` is `decoded` percent-encoded for the upstream.
    """

    decoded: str
    match_key: str
    forward: str


def _percent_decode(raw: bytes) -> bytes:
    """Decode %XX escapes exactly once; malformed escapes are an error, not literal text."""
    if b"%" not in raw:
        return raw
    out = bytearray()
    index = 0
    length = len(raw)
    while index < length:
        byte = raw[index]
        if byte == 0x25:  # '%'
            if index + 2 >= length:
                raise UnsafePath("a percent-escape is cut short")
            first, second = raw[index + 1], raw[index + 2]
            if first not in _HEX or second not in _HEX:
                raise UnsafePath("a percent-escape is not two hex digits")
            out.append(int(raw[index + 1 : index + 3], 16))
            index += 3
        else:
            out.append(byte)
            index += 1
    return bytes(out)


def _check_raw(raw: bytes) -> None:
    if not raw.startswith(b"/"):
        raise UnsafePath("the path must start with '/'")
    if not _PRINTABLE.fullmatch(raw):
        raise UnsafePath("the path must be printable ASCII")
    if b"\\" in raw:
        raise UnsafePath("backslashes are not allowed in paths")
    lowered = raw.lower()
    if b"%2f" in lowered:
        raise UnsafePath("encoded slashes (%2F) are not allowed in paths")
    if b"%5c" in lowered:
        raise UnsafePath("encoded backslashes (%5C) are not allowed in paths")


def _resolve_segments(text: str) -> list[str]:
    """Collapse repeated slashes and resolve dot segments (RFC 3986 5.2.4, no climbing out)."""
    resolved: list[str] = []
    for segment in text.split("/")[1:]:
        if segment in ("", "."):
            continue
        if segment == "..":
            if not resolved:
                raise UnsafePath("the path climbs above the root")
            resolved.pop()
            continue
        resolved.append(segment)
    return resolved


@functools.lru_cache(maxsize=4096)
def canonicalise(raw_path: bytes) -> CanonicalPath:
    """Apply the rules in this module's docstring to a raw ASGI path, or raise UnsafePath.

    The answer depends on the bytes alone, so the most recent ones are remembered: decoding and
    re-quoting cost more than the rest of routing together (refusals are never cached).
    """
    _check_raw(raw_path)
    decoded_bytes = _percent_decode(raw_path)
    try:
        text = decoded_bytes.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UnsafePath("the decoded path is not UTF-8") from error
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        raise UnsafePath("control characters are not allowed in paths")
    if "\\" in text:
        raise UnsafePath("backslashes are not allowed in paths")
    segments = _resolve_segments(text)
    trailing = text.endswith("/") or text.endswith("/.") or text.endswith("/..")
    body = "/" + "/".join(segments)
    decoded = body + "/" if trailing and segments else body
    return CanonicalPath(
        decoded=decoded,
        match_key=body.lower(),
        forward=quote(decoded, safe=_SAFE_PATH_CHARS),
    )
