"""Checks that one HTTP response is what `docs/openapi.yaml` promises for its request.

The contract suite hooks `Conformance.check` into its httpx clients, so every response any
contract test receives is checked, on top of the test's own assertions: its status code is
documented for that method and path, its media type is the documented one, its body matches the
documented JSON schema (formats included) and its documented headers are present and valid. A
path that matches no template must be a 404, a known path with an undocumented method a 404 or
405 (405 with `Allow`). This module never knows which implementation answered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import yaml

OPENAPI_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True)
class Template:
    """One path of the document and the regular expression its concrete paths match."""

    path: str
    pattern: re.Pattern[str]


def _template(path: str) -> Template:
    parts = re.split(r"(\{[^}]+\})", path)
    regex = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    return Template(path, re.compile(regex))


class Conformance:
    """The OpenAPI document, ready to judge responses against it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.templates = [_template(path) for path in document["paths"]]
        self._validators: dict[str, jsonschema_rs.Validator] = {}

    @classmethod
    def load(cls, path: Path = OPENAPI_PATH) -> Conformance:
        return cls(yaml.safe_load(path.read_text(encoding="utf-8")))

    def schema(self, name: str) -> dict[str, Any]:
        """The schema `components.schemas.<name>`, resolvable on its own."""
        return {"$ref": f"#/components/schemas/{name}"}

    def validate(self, schema: dict[str, Any], instance: Any) -> None:
        """Raise AssertionError naming every way `instance` violates `schema`."""
        key = json.dumps(schema, sort_keys=True)
        validator = self._validators.get(key)
        if validator is None:
            root = {**schema, "components": self.document["components"]}
            validator = jsonschema_rs.Draft202012Validator(root, validate_formats=True)
            self._validators[key] = validator
        errors = [
            f"{error.instance_path}: {error.message}" for error in validator.iter_errors(instance)
        ]
        assert not errors, f"body violates the contract: {errors}\nbody: {instance!r}"

    def operation_path(self, path: str) -> str | None:
        for template in self.templates:
            if template.pattern.fullmatch(path):
                return template.path
        return None

    def _resolve(self, item: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in item:
            target: Any = self.document
            for part in item["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            item = target
        return item

    def documented_response(self, method: str, path: str, status: int) -> dict[str, Any]:
        """The response object the document gives for this request and status, or fail."""
        template = self.operation_path(path)
        responses = self.document["components"]["responses"]
        if template is None:
            assert status == 404, f"{method} {path}: unknown path answered {status}, not 404"
            return dict(responses["NotFound"])
        operation = self.document["paths"][template].get(method.lower())
        if operation is None:
            assert status in (404, 405), f"{method} {path}: undocumented method answered {status}"
            return dict(responses["MethodNotAllowed" if status == 405 else "NotFound"])
        documented = operation["responses"].get(str(status))
        assert documented is not None, (
            f"{method} {template} answered {status}, which the contract does not document "
            f"(documented: {sorted(operation['responses'])})"
        )
        return self._resolve(documented)

    def check(self, response: httpx.Response) -> None:
        """Assert that `response` conforms to the document (the httpx response hook)."""
        response.read()
        request = response.request
        if request.method == "HEAD":
            return
        path = request.url.raw_path.decode("ascii").split("?", 1)[0]
        documented = self.documented_response(request.method, path, response.status_code)
        where = f"{request.method} {path} -> {response.status_code}"
        self._check_headers(documented, response, where)
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        content = documented.get("content", {})
        assert media_type in content, f"{where}: content type {media_type!r}, not {list(content)}"
        schema = content[media_type].get("schema")
        if schema is None:
            return
        if media_type.endswith("json"):
            try:
                body = response.json()
            except ValueError as error:
                raise AssertionError(
                    f"{where}: body is not JSON: {response.text[:200]!r}"
                ) from error
        else:
            body = response.text
        self.validate(schema, body)

    def _check_headers(
        self, documented: dict[str, Any], response: httpx.Response, where: str
    ) -> None:
        for name, header in documented.get("headers", {}).items():
            header = self._resolve(header)
            value = response.headers.get(name)
            if value is None:
                assert not header.get("required"), f"{where}: missing header {name}"
                continue
            self.validate(header["schema"], value)


@cache
def conformance() -> Conformance:
    """The contract document, loaded once per test session."""
    return Conformance.load()


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110, 5.6.2
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")  # RFC 9110, 5.5: no control characters


def is_valid_http(headers: Mapping[str, str]) -> bool:
    """Whether request headers can be framed as HTTP/1.1 by the client that sends them: every
    name a token, no control character in a value, a Content-Length, if any, a decimal number
    (RFC 9112, 6.2), and no Transfer-Encoding (the client sends no chunked body)."""
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            return False
        if name.lower() == "content-length" and not value.strip().isdigit():
            return False
        if name.lower() == "transfer-encoding":
            return False
    return True
