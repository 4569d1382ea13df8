"""The public contract's request bodies as typed, strict models (see docs/openapi.yaml).

These are the contract, not anybody's domain model: both the monolith and the extracted
services validate with them so that identical input gets identical 422 bodies everywhere.
Strings are never coerced from numbers, must be encodable UTF-8 without NUL characters (a
database could not store them), and required text must not be blank.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr

_USERNAME = re.compile(r"[a-z0-9_]{3,32}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError("must be valid Unicode text") from error
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _username(value: str) -> str:
    if not _USERNAME.fullmatch(value):
        raise ValueError("must be 3 to 32 characters of a-z, 0-9 and _")
    return value


def _email(value: str) -> str:
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        raise ValueError("must be an email address")
    return value


def Text(min_length: int, max_length: int) -> type[str]:
    """A strict string of min..max characters that a database can store; non-blank if min>0."""
    checks = [AfterValidator(_storable)]
    if min_length > 0:
        checks.append(AfterValidator(_not_blank))
    return Annotated[  # type: ignore[return-value]
        StrictStr, Field(min_length=min_length, max_length=max_length), *checks
    ]


class ContractModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class SignUp(ContractModel):
    username: Annotated[StrictStr, AfterValidator(_storable), AfterValidator(_username)]
    email: Annotated[StrictStr, AfterValidator(_storable), AfterValidator(_email)]
    password: Annotated[StrictStr, Field(min_length=8, max_length=1024), AfterValidator(_storable)]
    display_name: Text(1, 64)  # type: ignore[valid-type]


class SignIn(ContractModel):
    username: Annotated[StrictStr, Field(max_length=256), AfterValidator(_storable)]
    password: Annotated[StrictStr, Field(max_length=1024), AfterValidator(_storable)]


class ProfileChange(ContractModel):
    display_name: Text(1, 64) | None = None  # type: ignore[valid-type]
    bio: Text(0, 500) | None = None  # type: ignore[valid-type]


class NewThread(ContractModel):
    title: Text(1, 200)  # type: ignore[valid-type]
    body: Text(1, 20000)  # type: ignore[valid-type]


class NewPost(ContractModel):
    body: Text(1, 20000)  # type: ignore[valid-type]


def _distinct(options: list[str]) -> list[str]:
    if len(set(options)) != len(options):
        raise ValueError("options must be distinct")
    return options


class NewPoll(ContractModel):
    question: Text(1, 300)  # type: ignore[valid-type]
    options: Annotated[
        list[Text(1, 100)],  # type: ignore[valid-type]
        Field(min_length=2, max_length=10),
        AfterValidator(_distinct),
    ]


class NewVote(ContractModel):
    option_id: Annotated[StrictInt, Field(ge=1, le=2**53)]


class SearchQuery(ContractModel):
    q: Text(1, 100)  # type: ignore[valid-type]
