"""`strangler export aws --context NAME`: a serverless context's SAM template, accepted by
cfn-lint and by the SAM translator offline, with one HTTP API event per route of the context,
the table with its stream, the bucket, the stream's event source mapping, and roles that name
only the table's, the stream's and the bucket's ARNs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from strangler.gateways.sam_template import NotServerless, export_sam, key_pattern
from strangler.serverless.emulator import table_definition
from strangler.workspace import BUNDLED, load_workspace
from tests.gateways.test_exports import tool
from tests.workspace.test_serverless_declaration import with_serverless


def template_of(tmp_path: Path) -> dict[str, Any]:
    workspace = load_workspace(with_serverless(tmp_path))
    made = export_sam(workspace, "polls", table_definition(workspace, "polls"))
    made.write(tmp_path / "export")
    found: dict[str, Any] = json.loads(made.files["template.json"])
    return found


class NoManagedPolicies:
    """The translator's managed-policy loader, offline: the template names none."""

    def load(self) -> dict[str, str]:
        return {}


def test_the_template_passes_cfn_lint(tmp_path: Path) -> None:
    template_of(tmp_path)
    linted = subprocess.run(
        [tool("cfn-lint"), str(tmp_path / "export" / "template.json")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_sam_translator_turns_it_into_cloudformation_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from samtranslator.translator.transform import transform

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    template = template_of(tmp_path)
    for resource in template["Resources"].values():  # what `sam package` does to local code
        if resource["Properties"].get("CodeUri") == ".":
            resource["Properties"]["CodeUri"] = "s3://artifacts/polls.zip"
    translated = transform(template, {}, NoManagedPolicies())  # type: ignore[arg-type]
    kinds = {resource["Type"] for resource in translated["Resources"].values()}
    assert {"AWS::Lambda::Function", "AWS::ApiGatewayV2::Api", "AWS::DynamoDB::Table",
            "AWS::S3::Bucket", "AWS::Lambda::EventSourceMapping"} <= kinds  # fmt: skip
    mapping = next(r for r in translated["Resources"].values()
                   if r["Type"] == "AWS::Lambda::EventSourceMapping")  # fmt: skip
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    body = next(r for r in translated["Resources"].values()
                if r["Type"] == "AWS::ApiGatewayV2::Api")["Properties"]["Body"]  # fmt: skip
    assert "/api/polls/{poll_id}/votes" in body["paths"]
    assert "post" in body["paths"]["/api/polls/{poll_id}/votes"]


def test_every_route_of_the_context_is_an_http_api_event_and_the_page_its_reader(
    tmp_path: Path,
) -> None:
    template = template_of(tmp_path)
    workspace = load_workspace(with_serverless(tmp_path))
    routes = workspace.spec.routes_claimed_by("polls")
    events = template["Resources"]["PollsHttpFunction"]["Properties"]["Events"]
    served = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events.values()}
    for route in routes:
        if route.path == "/results/{poll_id}.html":
            continue
        for method in set(route.methods) - {"HEAD"}:
            assert (method, route.path) in served, route.name
    page = template["Resources"]["PollsPagesFunction"]["Properties"]
    assert page["Events"]["Page"]["Properties"]["Path"] == "/results/{poll_id}"
    assert template["Resources"]["PollsHttpFunction"]["Properties"]["Handler"] == (
        "tests.functions.handlers.echo"
    )
    variables = template["Resources"]["PollsHttpFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["STRANGLER_TOKEN_SECRET"] == {"Ref": "TokenSecret"}
    assert template["Parameters"]["TokenSecret"]["NoEcho"] is True
    stream = template["Resources"]["Table"]["Properties"]["StreamSpecification"]
    assert stream == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def resources_of(role: dict[str, Any]) -> list[Any]:
    statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    return [resource for s in statements for resource in
            (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]  # fmt: skip


def test_each_role_names_only_its_own_resources(tmp_path: Path) -> None:
    resources = template_of(tmp_path)["Resources"]
    http = json.dumps(resources_of(resources["HttpRole"]))
    stream = json.dumps(resources_of(resources["StreamRole"]))
    pages = json.dumps(resources_of(resources["PagesRole"]))
    for role in (http, stream, pages):
        assert '"*"' not in role
    assert "Bucket" not in http and "StreamArn" not in http
    assert "StreamArn" in stream and "${Bucket.Arn}/results/*" in stream
    assert "${Bucket.Arn}/results/*" in pages and "Table" not in pages
    statements = resources["PagesRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert statements[1]["Action"] == ["s3:GetObject"]
    for resource in resources.values():
        assert resource["Type"] != "AWS::IAM::ManagedPolicy"
        assert "ManagedPolicyArns" not in resource.get("Properties", {})


def test_the_page_reader_reads_only_keys_of_the_template() -> None:
    import re

    pattern = re.compile(key_pattern("results/{poll_id}.html"))
    assert pattern.fullmatch("results/7.html")
    assert not pattern.fullmatch("results/../secret.html/x") and not pattern.fullmatch(
        "other/7.html"
    )


def test_a_context_not_declared_serverless_is_refused() -> None:
    with pytest.raises(NotServerless):
        export_sam(load_workspace(BUNDLED), "users", None)


def test_the_command_writes_the_template_and_its_lowering_report(tmp_path: Path) -> None:
    path = with_serverless(tmp_path)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "strangler", "export", "aws", "--context", "polls",
         "--output", str(out)],
        env={**os.environ, "STRANGLER_WORKSPACE": str(path)}, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((out / "template.json").read_text())["Transform"] == (
        "AWS::Serverless-2016-10-31"
    )
    assert "function permissions" in (out / "LOWERING.md").read_text()
