"""`strangler export aws --context NAME`: a serverless context as an AWS SAM template.

From the workspace's `[contexts.NAME.serverless]` and the context's routes: the HTTP function
(`AWS::Serverless::Function`, one `HttpApi` event per route of the context), the
`AWS::Serverless::HttpApi` they share, the table from its `create_table` definition with its
stream, the private bucket of the pages and the page route (a small function of the
template's own reading the page's key, as the proxy's presigned read does locally), the
stream function with the stream's event source mapping, and one IAM role per function
granting only the actions it needs on the table's, the stream's and the bucket's ARNs (no
managed policy, no wildcard resource). What the template cannot say as the workspace does is
in the lowering report. This module must never call AWS.
"""

from __future__ import annotations

import json
import re
from typing import Any

from strangler.gateways.lowering import MATCHING, Export, Lowering
from strangler.workspace import Workspace
from strangler.workspace.model import RouteSpec, ServerlessSpec

TEMPLATE_FILE = "template.json"
RUNTIME = "python3.11"
_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
TABLE_ACTIONS = (
    "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem",
    "dynamodb:Query", "dynamodb:TransactGetItems", "dynamodb:TransactWriteItems",
    "dynamodb:UpdateItem",
)  # fmt: skip
STREAM_ACTIONS = (
    "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)  # fmt: skip
PAGE_ACTIONS = ("s3:PutObject", "s3:GetObject")
_HTTP_METHODS = {"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"}


class NotServerless(ValueError):
    """The context is not declared serverless, or its declaration cannot be exported."""


def lambda_handler(import_path: str) -> str:
    """`package.module:function` as Lambda's Python runtime names it: `package.module.function`."""
    module, _, attribute = import_path.partition(":")
    if "." in attribute:
        raise NotServerless(
            f"{import_path}: Lambda calls a module's function, not an attribute's ({attribute})"
        )
    return f"{module}.{attribute}"


def aws_path(path: str) -> str:
    """A route template as API Gateway takes it: a parameter is a whole segment."""
    segments = []
    for segment in path.strip("/").split("/"):
        names = _PARAMETER.findall(segment)
        segments.append("{" + names[0] + "}" if names else segment)
    return "/" + "/".join(segment for segment in segments if segment)


def _logical(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]", name) if part)


def _log_statement(function_name: Any) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": {
            "Fn::Sub": [
                "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
                "/aws/lambda/${Name}:*",
                {"Name": function_name},
            ]
        },
    }


def _role(statements: list[dict[str, Any]], policy_name: str) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": policy_name,
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                }
            ],
        },
    }


def _table_resources(definition: dict[str, Any]) -> list[Any]:
    resources: list[Any] = [{"Fn::GetAtt": ["Table", "Arn"]}]
    if definition.get("GlobalSecondaryIndexes") or definition.get("LocalSecondaryIndexes"):
        resources.append({"Fn::Sub": "${Table.Arn}/index/*"})
    return resources


def _table(definition: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation table of a `create_table` definition (the same keys, but for
    the name, which the stack gives)."""
    properties = {
        key: value
        for key, value in definition.items()
        if key
        in {
            "KeySchema", "AttributeDefinitions", "BillingMode", "StreamSpecification",
            "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput",
        }
    }  # fmt: skip
    stream = properties.get("StreamSpecification")
    if stream is not None:
        properties["StreamSpecification"] = {"StreamViewType": stream["StreamViewType"]}
    return {"Type": "AWS::DynamoDB::Table", "Properties": properties}


def _key_prefix(pages: str) -> str:
    """The literal start of a key template, for a resource ARN (`results/*`)."""
    return pages.split("{", 1)[0] + "*"


def export_sam(workspace: Workspace, context: str, definition: dict[str, Any] | None) -> Export:
    """The SAM template of a serverless context; `definition` is its table's `create_table`
    arguments (read by the caller from the import path)."""
    spec = workspace.contexts[context].serverless
    if spec is None:
        raise NotServerless(f"{context} has no [contexts.{context}.serverless] declaration")
    routes = workspace.spec.routes_claimed_by(context)
    prefix = _logical(context)
    resources: dict[str, Any] = {"HttpApi": {"Type": "AWS::Serverless::HttpApi", "Properties": {}}}
    lowerings: list[Lowering] = []
    environment: dict[str, Any] = {"LOG_LEVEL": "INFO", **spec.env}
    if definition is not None:
        resources["Table"] = _table(definition)
        environment[f"{context.upper()}_TABLE"] = {"Ref": "Table"}
    if spec.bucket is not None:
        resources["Bucket"] = _bucket()
        environment[f"{context.upper()}_BUCKET"] = {"Ref": "Bucket"}
    page_routes = [r for r in routes if spec.pages_route_path and r.path == spec.pages_route_path]
    function_routes = [route for route in routes if route not in page_routes]
    http_name = {"Fn::Sub": f"${{AWS::StackName}}-{context}-http"}
    # Every process of a system shares the token key; on AWS it is a parameter, never a file.
    http_environment = {**environment, "STRANGLER_TOKEN_SECRET": {"Ref": "TokenSecret"}}
    resources[f"{prefix}HttpFunction"] = _function(
        lambda_handler(spec.handler), http_name, http_environment, "HttpRole",
        _http_events(function_routes),
    )  # fmt: skip
    statements = [_log_statement(http_name)]
    if definition is not None:
        statements.append(_allow(TABLE_ACTIONS, _table_resources(definition)))
    resources["HttpRole"] = _role(statements, f"{context}-http")
    if spec.stream_handler is not None and definition is not None:
        resources.update(_stream_function(context, prefix, spec, definition, environment))
    for route in page_routes[:1]:
        resources.update(_page_route(context, route, spec))
    mixed = tuple(r.name for r in routes if aws_path(r.path) != r.path)
    if mixed:
        lowerings.append(
            Lowering(
                MATCHING,
                mixed,
                "a segment mixing text and a parameter ({id}.html) becomes a whole-segment"
                " parameter: the route matches more paths than the workspace's",
            )
        )
    lowerings.extend(_fixed_lowerings(spec))
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": f"{context} as functions: rendered by `strangler export aws` from the"
        " workspace's serverless declaration",
        "Parameters": {
            "TokenSecret": {
                "Type": "String",
                "NoEcho": True,
                "MinLength": 32,
                "Description": "the key bearer tokens are signed with (STRANGLER_TOKEN_SECRET)",
            }
        },
        "Resources": resources,
        "Outputs": {
            "Endpoint": {
                "Description": "the HTTP API's URL",
                "Value": {
                    "Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
                },
            }
        },
    }
    return Export(
        "aws-sam", {TEMPLATE_FILE: json.dumps(template, indent=2) + "\n"}, tuple(lowerings)
    )


def _allow(actions: tuple[str, ...], resources: list[Any]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": list(actions), "Resource": resources}


def _bucket() -> dict[str, Any]:
    return {
        "Type": "AWS::S3::Bucket",
        "Properties": {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True, "IgnorePublicAcls": True,
                "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
        },
    }  # fmt: skip


def _function(
    handler: str, name: Any, environment: dict[str, Any], role: str,
    events: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    properties: dict[str, Any] = {
        "FunctionName": name,
        "Handler": handler,
        "Runtime": RUNTIME,
        "CodeUri": ".",
        "Timeout": 29,
        "MemorySize": 512,
        "Role": {"Fn::GetAtt": [role, "Arn"]},
        "Environment": {"Variables": environment},
    }
    if events:
        properties["Events"] = events
    return {"Type": "AWS::Serverless::Function", "Properties": properties}


def _http_events(routes: list[RouteSpec]) -> dict[str, Any]:
    events: dict[str, Any] = {}
    for route in routes:
        methods = ["ANY"] if "*" in route.methods else [m for m in route.methods if m != "HEAD"]
        for method in methods:
            if method != "ANY" and method not in _HTTP_METHODS:
                continue
            name = _logical(f"{route.name}-{method}")
            events[name] = {
                "Type": "HttpApi",
                "Properties": {
                    "ApiId": {"Ref": "HttpApi"},
                    "Path": aws_path(route.path),
                    "Method": method,
                },
            }
    return events


def _stream_function(
    context: str, prefix: str, spec: ServerlessSpec, definition: dict[str, Any],
    environment: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    assert spec.stream_handler is not None
    name = {"Fn::Sub": f"${{AWS::StackName}}-{context}-stream"}
    events = {
        "TableStream": {
            "Type": "DynamoDB",
            "Properties": {
                "Stream": {"Fn::GetAtt": ["Table", "StreamArn"]},
                "StartingPosition": "TRIM_HORIZON",
                "BatchSize": 100,
                "MaximumRetryAttempts": 10,
                "BisectBatchOnFunctionError": True,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            },
        }
    }
    statements = [
        _log_statement(name),
        _allow(STREAM_ACTIONS, [{"Fn::GetAtt": ["Table", "StreamArn"]}]),
        _allow(TABLE_ACTIONS, _table_resources(definition)),
    ]
    if spec.bucket is not None:
        pages = _key_prefix(spec.pages) if spec.pages else "*"
        statements.append(_allow(PAGE_ACTIONS, [{"Fn::Sub": f"${{Bucket.Arn}}/{pages}"}]))
    return {
        f"{prefix}StreamFunction": _function(
            lambda_handler(spec.stream_handler), name, environment, "StreamRole", events
        ),
        "StreamRole": _role(statements, f"{context}-stream"),
    }


# The pages' reader: the bucket stays private; this function may read the pages' keys only.
PAGE_READER = """import base64, os, re
import boto3

s3 = boto3.client("s3")
PATTERN = re.compile(os.environ["PAGE_KEY_PATTERN"])


def handler(event, context):
    key = event["rawPath"].lstrip("/")
    request_id = event["requestContext"]["requestId"]
    if not PATTERN.fullmatch(key):
        return missing(event, request_id)
    try:
        found = s3.get_object(Bucket=os.environ["PAGE_BUCKET"], Key=key)
    except s3.exceptions.NoSuchKey:
        return missing(event, request_id)
    return {
        "statusCode": 200,
        "headers": {"content-type": found.get("ContentType", "text/html")},
        "body": base64.b64encode(found["Body"].read()).decode(),
        "isBase64Encoded": True,
    }


def missing(event, request_id):
    return {
        "statusCode": 404,
        "headers": {"content-type": "application/problem+json"},
        "body": '{"type": "urn:strangler:problem:not-found", "title": "Not found", "status": 404,'
        ' "detail": "there is no page here", "request_id": "%s"}' % request_id,
    }
"""


def key_pattern(pages: str) -> str:
    """The keys a page route may read: the template with each placeholder one segment."""
    pieces, position = [], 0
    for found in _PARAMETER.finditer(pages):
        pieces.append(re.escape(pages[position : found.start()]))
        pieces.append("[^/]+")
        position = found.end()
    pieces.append(re.escape(pages[position:]))
    return "".join(pieces)


def _page_route(context: str, route: RouteSpec, spec: ServerlessSpec) -> dict[str, Any]:
    """The page route: a small function reads the page's key (the request's path) from the
    private bucket, allowed `s3:GetObject` on the pages' keys only."""
    assert spec.pages is not None and spec.bucket is not None
    name = {"Fn::Sub": f"${{AWS::StackName}}-{context}-pages"}
    function = _function(
        "index.handler", name,
        {"PAGE_BUCKET": {"Ref": "Bucket"}, "PAGE_KEY_PATTERN": key_pattern(spec.pages)},
        "PagesRole",
        {"Page": {"Type": "HttpApi", "Properties": {
            "ApiId": {"Ref": "HttpApi"}, "Path": aws_path(route.path), "Method": "GET"}}},
    )  # fmt: skip
    del function["Properties"]["CodeUri"]
    function["Properties"]["InlineCode"] = PAGE_READER
    function["Properties"]["MemorySize"] = 256
    statements = [
        _log_statement(name),
        _allow(("s3:GetObject",), [{"Fn::Sub": f"${{Bucket.Arn}}/{_key_prefix(spec.pages)}"}]),
    ]
    return {
        f"{_logical(context)}PagesFunction": function,
        "PagesRole": _role(statements, f"{context}-pages"),
    }


def _fixed_lowerings(spec: ServerlessSpec) -> list[Lowering]:
    found = [
        Lowering(
            "function permissions",
            (),
            "each function's role allows the usual item actions on its table (and the stream"
            " function the stream's reads and the pages' writes): the workspace does not say"
            " which of them its code uses; trim them to what it calls",
        ),
        Lowering(
            "problem+json errors",
            (),
            "API Gateway answers its own errors (a throttled or timed-out function) as"
            ' {"message": ...}, not problem+json',
        ),
    ]
    return found
