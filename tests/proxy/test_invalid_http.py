"""Which requests the contract fuzzing counts as no HTTP/1.1 at all (refused before any
application sees them, so outside every operation's contract): `is_valid_http`."""

from __future__ import annotations

import pytest

from tests.contract.conformance import is_valid_http


@pytest.mark.parametrize(
    ("headers", "valid"),
    [
        ({"Authorization": "Bearer x", "Content-Length": "0"}, True),
        ({"Hw!N": "@qY]*T.5V", "-$7gVm": "Inf"}, True),  # odd, but tokens and values
        ({"content-length": "<g"}, False),
        ({"Content-Length": "-1"}, False),
        ({"Transfer-Encoding": "gzip"}, False),
        ({"FtS8SshZr;": ""}, False),  # not a token
        ({"X-Note": "a\r\nInjected: yes"}, False),
    ],
)
def test_only_headers_no_http_parser_accepts_count_as_invalid_http(
    headers: dict[str, str], valid: bool
) -> None:
    assert is_valid_http(headers) is valid
