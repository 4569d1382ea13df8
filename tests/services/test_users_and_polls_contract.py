"""The black-box contract suite of `tests/contract`, run against the users and polls services.

The contract suite is parameterised by a `Deployment` (where each context is served, and which
contexts are under test). This module re-uses its test modules unchanged, with two deployments
of its own: the users service alone, and the polls service with its preconditions (members,
tokens) made through the users service. Tests of other contexts are skipped by the suite's own
rule. To run one side: `pytest tests/services/test_users_and_polls_contract.py -k users-service`.
"""

from __future__ import annotations

from types import ModuleType

import pytest
from _pytest.fixtures import FixtureFunctionDefinition

from tests.contract import conftest as contract
from tests.contract import test_bad_input, test_errors, test_polls, test_users
from tests.contract.conftest import Deployment, everything_at
from tests.services.conftest import StartService

# The suite's fixtures, except `deployment`, which this module provides.
for _name, _value in vars(contract).items():
    if isinstance(_value, FixtureFunctionDefinition) and _name != "deployment":
        globals()[_name] = _value


def _reuse(module: ModuleType) -> None:
    """Collect `module`'s tests and fixtures here, with its module-level context marks."""
    marks = getattr(module, "pytestmark", [])
    marks = marks if isinstance(marks, list) else [marks]
    for name, value in vars(module).items():
        if isinstance(value, FixtureFunctionDefinition):
            globals()[name] = value
        elif name.startswith(("test_", "Test")):
            for mark in marks:
                value = mark(value)
            globals()[name] = value


for _module in (test_users, test_polls, test_errors, test_bad_input):
    _reuse(_module)


@pytest.fixture(scope="session", params=["users-service", "polls-service"])
def deployment(request: pytest.FixtureRequest, session_service: StartService) -> Deployment:
    users = session_service("users").url
    if request.param == "users-service":
        return Deployment("users-service", everything_at(users), frozenset({"users", "operations"}))
    polls = session_service("polls").url
    return Deployment(
        "polls-service",
        {**everything_at(polls), "users": users},
        frozenset({"polls", "operations"}),
    )
