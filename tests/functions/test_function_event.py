"""An HTTP request becomes API Gateway's payload 2.0 event, and a function's result the HTTP
response, as the real gateway does it (pure functions, no process)."""

from __future__ import annotations

import base64

import pytest

from strangler_proxy.function_event import (
    FunctionRequest,
    MalformedResult,
    http_api_event,
    http_response,
    path_parameters,
)


def request(**changes: object) -> FunctionRequest:
    fields: dict[str, object] = {
        "method": "POST",
        "path": "/api/polls/7/votes",
        "raw_query": "a=1&b=two&a=3",
        "headers": [
            ("host", "example.org"),
            ("user-agent", "tester/1"),
            ("accept", "text/html"),
            ("accept", "application/json"),
            ("cookie", "flavour=oat; size=big"),
            ("content-type", "application/json"),
            ("x-request-id", "req-1"),
            ("x-real-ip", "10.1.2.3"),
        ],
        "body": b'{"option_id": 2}',
        "request_id": "req-1",
        "route_key": "POST /api/polls/{poll_id}/votes",
        "route_template": "/api/polls/{poll_id}/votes",
    }
    fields.update(changes)
    return FunctionRequest(**fields)  # type: ignore[arg-type]


def test_the_event_carries_what_the_gateway_would_send() -> None:
    event = http_api_event(request(), now=1_700_000_000.5)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /api/polls/{poll_id}/votes"
    assert event["rawPath"] == "/api/polls/7/votes"
    assert event["rawQueryString"] == "a=1&b=two&a=3"
    assert event["queryStringParameters"] == {"a": "1,3", "b": "two"}
    assert event["cookies"] == ["flavour=oat", "size=big"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["accept"] == "text/html,application/json"
    assert event["pathParameters"] == {"poll_id": "7"}
    http = event["requestContext"]["http"]
    assert http == {
        "method": "POST", "path": "/api/polls/7/votes", "protocol": "HTTP/1.1",
        "sourceIp": "10.1.2.3", "userAgent": "tester/1",
    }  # fmt: skip
    assert event["requestContext"]["requestId"] == "req-1"
    assert event["requestContext"]["timeEpoch"] == 1_700_000_000_500
    assert event["body"] == '{"option_id": 2}' and event["isBase64Encoded"] is False


def test_a_body_that_is_not_text_is_base64_encoded() -> None:
    raw = bytes(range(256))
    headers = [("content-type", "application/octet-stream")]
    event = http_api_event(request(headers=headers, body=raw))
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_a_request_without_body_query_or_parameters_leaves_them_out() -> None:
    event = http_api_event(
        request(method="GET", raw_query="", body=None, headers=[], route_template=None)
    )
    for absent in ("body", "queryStringParameters", "pathParameters", "cookies"):
        assert absent not in event


def test_path_parameters_follow_a_template_with_literal_text_around_them() -> None:
    assert path_parameters("/results/{poll_id}.html", "/results/42.html") == {"poll_id": "42"}
    assert path_parameters("/results/{poll_id}.html", "/other/42.html") is None
    assert path_parameters("/api/polls", "/api/polls") is None


def test_the_result_becomes_the_response_with_cookies_as_set_cookie() -> None:
    answer = http_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-One": "1"},
            "multiValueHeaders": {"x-many": ["a", "b"]},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": '{"ok": true}',
        },
        "req-9",
    )
    assert answer.status == 201 and answer.body == b'{"ok": true}'
    assert answer.content_type == "application/json"
    assert (b"x-many", b"a") in answer.headers and (b"x-many", b"b") in answer.headers
    assert [v for n, v in answer.headers if n == b"set-cookie"] == [b"a=1; Path=/", b"b=2"]
    assert (b"x-request-id", b"req-9") in answer.headers
    assert (b"content-length", b"12") in answer.headers


def test_a_base64_body_is_decoded() -> None:
    encoded = base64.b64encode(b"\x00\xff").decode()
    answer = http_response({"statusCode": 200, "body": encoded, "isBase64Encoded": True}, "r")
    assert answer.body == b"\x00\xff"


def test_a_dict_without_status_is_a_json_200_as_the_gateway_infers() -> None:
    answer = http_response({"hello": "world"}, "r")
    assert answer.status == 200 and answer.body == b'{"hello": "world"}'


@pytest.mark.parametrize(
    "result",
    [
        ["a", "list"],
        {"statusCode": "200"},
        {"statusCode": 99},
        {"statusCode": 200, "headers": ["x"]},
        {"statusCode": 200, "headers": {"x": "a\r\nb"}},
        {"statusCode": 200, "body": 12},
        {"statusCode": 200, "body": "!!", "isBase64Encoded": True},
        {"statusCode": 200, "cookies": "a=1"},
        {"statusCode": 200, "headers": {"x": "\u20ac"}},
    ],
)
def test_a_malformed_result_is_refused(result: object) -> None:
    with pytest.raises(MalformedResult):
        http_response(result, "r")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("function:tests.functions.handlers", "function:package.module:handler"),
        ("bucket:Bad_Bucket/results/{id}.html", "bucket:NAME/key/template"),
        ("bucket:pages", "bucket:NAME/key/template"),
        ("ftp://somewhere", "should match pattern"),
    ],
)
def test_an_upstream_of_an_unknown_kind_or_shape_is_refused_with_its_line(
    url: str, expected: str
) -> None:
    from strangler_proxy.table import TableError, parse_table

    text = f'unmatched = "monolith"\n\n[upstreams]\nthings = "{url}"\n'
    with pytest.raises(TableError) as refused:
        parse_table(text, "t.toml")
    [problem] = refused.value.problems
    assert problem.startswith(("t.toml:3: upstreams", "t.toml:4: upstreams.things")), problem
    assert expected in problem
