"""`[contexts.NAME.serverless]`: a context served as functions is declared with its handlers,
table, bucket and pages; a wrong declaration is refused with the line of the problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from strangler.workspace import BUNDLED, WorkspaceError, load_workspace
from strangler.workspace.validate import table_definitions, unresolved

DECLARATION = """
[contexts.polls.serverless]
handler = "tests.functions.handlers:echo"
stream_handler = "tests.functions.handlers:record_stream"
table = "tests.functions.handlers:TABLE"
bucket = "polls-results"
pages = "results/{poll_id}.html"
env = { LOG_LEVEL = "DEBUG" }
"""


def with_serverless(tmp_path: Path, declaration: str = DECLARATION) -> Path:
    """The bundled workspace file with `declaration` in place of the polls functions' own."""
    text = re.sub(r"\[contexts\.polls\.serverless\]\n(?:\w+ = [^\n]*\n)*", "", BUNDLED.read_text())
    anchor = "[contexts.forum]\n"
    path = tmp_path / "strangler.toml"
    path.write_text(text.replace(anchor, declaration.lstrip() + "\n" + anchor, 1))
    return path


def refused(path: Path) -> list[str]:
    with pytest.raises(WorkspaceError) as error:
        load_workspace(path)
    return error.value.problems


def line_of(path: Path, fragment: str) -> int:
    text = path.read_text()
    return text[: text.index(fragment)].count("\n") + 1


def test_a_serverless_context_reads_back_with_every_part(tmp_path: Path) -> None:
    serverless = load_workspace(with_serverless(tmp_path)).contexts["polls"].serverless
    assert serverless is not None
    assert serverless.handler == "tests.functions.handlers:echo"
    assert serverless.bucket == "polls-results"
    assert serverless.pages_route_path == "/results/{poll_id}.html"
    assert serverless.env == {"LOG_LEVEL": "DEBUG"}


def test_a_stream_handler_without_a_table_is_refused_with_its_line(tmp_path: Path) -> None:
    path = with_serverless(
        tmp_path, DECLARATION.replace('table = "tests.functions.handlers:TABLE"\n', "")
    )
    [problem] = refused(path)
    assert "declare `table`" in problem
    assert problem.startswith(f"{path}:{line_of(path, '[contexts.polls.serverless]')}:")


def test_pages_without_a_bucket_are_refused(tmp_path: Path) -> None:
    [problem] = refused(
        with_serverless(tmp_path, DECLARATION.replace('bucket = "polls-results"\n', ""))
    )
    assert "declare `bucket`" in problem


def test_a_bucket_name_s3_would_refuse_is_refused_with_its_line(tmp_path: Path) -> None:
    path = with_serverless(tmp_path, DECLARATION.replace('"polls-results"', '"Polls_Results"'))
    [problem] = refused(path)
    assert problem.startswith(
        f"{path}:{line_of(path, 'bucket = ')}: contexts.polls.serverless.bucket:"
    )


def test_a_key_template_with_a_leading_slash_is_refused(tmp_path: Path) -> None:
    path = with_serverless(tmp_path, DECLARATION.replace('"results/{', '"/results/{'))
    [problem] = refused(path)
    assert "no leading '/'" in problem and f":{line_of(path, 'pages = ')}:" in problem


def test_pages_no_route_of_the_context_serves_are_refused(tmp_path: Path) -> None:
    path = with_serverless(
        tmp_path, DECLARATION.replace("results/{poll_id}.html", "pages/{poll_id}.html")
    )
    [problem] = refused(path)
    assert "no route of polls has the path /pages/{poll_id}.html" in problem


def test_an_unknown_field_of_the_declaration_is_refused_with_its_line(tmp_path: Path) -> None:
    path = with_serverless(tmp_path, DECLARATION.replace("handler = ", "handlr = ", 1))
    problems = refused(path)
    assert any(
        problem.startswith(
            f"{path}:{line_of(path, 'handlr = ')}: contexts.polls.serverless.handlr:"
        )
        for problem in problems
    )


def test_check_config_imports_the_functions_and_reads_the_table(tmp_path: Path) -> None:
    workspace = load_workspace(with_serverless(tmp_path))
    assert unresolved(workspace) == []
    assert table_definitions(workspace) == []


def test_a_function_that_cannot_be_imported_is_named_with_its_line(tmp_path: Path) -> None:
    path = with_serverless(tmp_path, DECLARATION.replace("handlers:echo", "handlers:missing"))
    [problem] = unresolved(load_workspace(path))
    assert problem.startswith(
        f"{path}:{line_of(path, 'handler = ')}: contexts.polls.serverless.handler:"
    )


def test_a_table_without_a_stream_is_refused_when_a_stream_handler_reads_it(
    tmp_path: Path,
) -> None:
    path = with_serverless(
        tmp_path, DECLARATION.replace("handlers:TABLE", "handlers:TABLE_WITHOUT_STREAM")
    )
    [problem] = table_definitions(load_workspace(path))
    assert "StreamEnabled" in problem and f":{line_of(path, 'table = ')}:" in problem
