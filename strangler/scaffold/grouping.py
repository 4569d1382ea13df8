"""`strangler init`'s guesses: which routes make a context, and which tables each one owns.

Routes: one context per blueprint; routes outside any blueprint by the first word of their
path (`/api/members/<id>` and `/members/<id>` make `members`); a route with no such word stays
the monolith's. Tables: a table named like a context, or like a word of its routes' paths
(`books` for `/api/books`), goes to that context; then a table that references tables of one
context goes with them (an association table with its parents), and so does one whose
children all belong to one context. Every guess carries the reason it was made, for the
file's comments; what no rule places stays the monolith's. This module must never import the
app or open a database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import MetaData, Table

from strangler.workspace.model import RESERVED, RouteSpec

# Path words that say nothing about the domain.
NOISE = frozenset({"api", "apis", "rest", "json", "v1", "v2", "v3", "v4", "public", "admin"})
_WORD = re.compile(r"[a-z][a-z0-9_]*")


@dataclass
class ContextGuess:
    """A context `init` proposes: the routes it claims and why, and its tables."""

    name: str
    reason: str
    blueprints: list[str] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)
    routes: list[RouteSpec] = field(default_factory=list)
    tables: dict[str, str] = field(default_factory=dict)  # table -> why

    def words(self) -> list[str]:
        """The words of its routes' paths, most telling first (the first word of each)."""
        firsts = [word for route in self.routes for word in path_words(route.path)[:1]]
        rest = [word for route in self.routes for word in path_words(route.path)[1:]]
        return list(dict.fromkeys([*firsts, *rest]))


def context_name(text: str) -> str:
    """A context name (`[a-z][a-z0-9_]*`, at most 31 characters, not reserved) from any text."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"context_{name}".rstrip("_")
    name = name[:31]
    return f"{name}_context"[:31] if name in RESERVED else name


def path_words(path: str) -> list[str]:
    """The literal words of a route's path, without parameters and noise."""
    words = []
    for part in path.strip("/").split("/"):
        if "{" in part:
            continue
        word = part.split(".", 1)[0].lower().replace("-", "_")
        if _WORD.fullmatch(word) and word not in NOISE:
            words.append(word)
    return words


def group_routes(routes: Iterable[RouteSpec]) -> tuple[list[ContextGuess], list[RouteSpec]]:
    """The contexts the routes suggest, and the routes none claims (they stay the monolith's)."""
    contexts: dict[str, ContextGuess] = {}
    unclaimed = []
    for route in routes:
        if route.blueprint:
            name = context_name(route.blueprint)
            guess = contexts.setdefault(
                name, ContextGuess(name, f'the routes of blueprint "{route.blueprint}"')
            )
            if route.blueprint not in guess.blueprints:
                guess.blueprints.append(route.blueprint)
        else:
            words = path_words(route.path)
            if not words:
                unclaimed.append(route)
                continue
            name = context_name(words[0])
            guess = contexts.setdefault(
                name, ContextGuess(name, f"the routes outside a blueprint under /{words[0]}")
            )
            guess.endpoints.append(route.name)
        guess.routes.append(route)
    return list(contexts.values()), unclaimed


def _matches(table: str, word: str) -> bool:
    """A table named like a word, singular or plural."""
    stems = {word, word + "s", word + "es", word.removesuffix("s"), word.removesuffix("es")}
    return table.lower() in stems or table.lower().removesuffix("s") in stems


def assign_tables(metadata: MetaData, contexts: list[ContextGuess]) -> list[str]:
    """Give each table to a context (recorded in the guesses, with the reason); the tables
    that stay the monolith's."""
    tables = {
        name: table
        for name, table in metadata.tables.items()
        if not name.startswith(("strangler_", "alembic_version"))
    }
    owner: dict[str, ContextGuess] = {}
    for name in tables:
        found = _by_name(name, contexts)
        if found is not None:
            guess, reason = found
            owner[name] = guess
            guess.tables[name] = reason
    changed = True
    while changed:
        changed = False
        for name, table in tables.items():
            if name in owner:
                continue
            found = _by_references(table, tables, owner)
            if found is not None:
                guess, reason = found
                owner[name] = guess
                guess.tables[name] = reason
                changed = True
    return [name for name in tables if name not in owner]


def _by_name(table: str, contexts: list[ContextGuess]) -> tuple[ContextGuess, str] | None:
    """The context a table is named after: its own name (best), the first word of one of its
    routes' paths, or any word of them."""
    scored: list[tuple[int, ContextGuess, str]] = []
    for guess in contexts:
        if _matches(table, guess.name):
            scored.append((3, guess, f"named like the context {guess.name}"))
            continue
        firsts = {words[0] for route in guess.routes if (words := path_words(route.path))}
        for word in guess.words():
            if _matches(table, word):
                where = list(
                    dict.fromkeys(r.path for r in guess.routes if word in path_words(r.path))
                )
                score = 2 if word in firsts else 1
                scored.append((score, guess, f"named like its routes ({', '.join(where[:2])})"))
                break
    if not scored:
        return None
    scored.sort(key=lambda found: -found[0])
    best = scored[0]
    others = [found[1].name for found in scored[1:] if found[0] == best[0]]
    reason = best[2] + (f"; {', '.join(others)} has such routes too" if others else "")
    return best[1], reason


def _by_references(
    table: Table, tables: dict[str, Table], owner: dict[str, ContextGuess]
) -> tuple[ContextGuess, str] | None:
    parents = [
        key.column.table.name
        for key in table.foreign_keys
        if key.column.table.name in owner and key.column.table.name != table.name
    ]
    if parents:
        contexts = {owner[name].name: owner[name] for name in parents}
        if len(contexts) == 1:
            guess = next(iter(contexts.values()))
            return guess, f"it references {', '.join(sorted(set(parents)))} ({guess.name})"
        prefixed = [owner[name] for name in parents if table.name.startswith(name.rstrip("s"))]
        chosen = prefixed[0] if prefixed else owner[parents[0]]
        rest = sorted(set(contexts) - {chosen.name})
        return chosen, (
            f"it references {', '.join(sorted(set(parents)))}; named after"
            f" {chosen.name}'s, though it references {', '.join(rest)} too"
        )
    children = {
        owner[other.name].name: owner[other.name]
        for other in tables.values()
        if other.name in owner
        for key in other.foreign_keys
        if key.column.table.name == table.name
    }
    if len(children) == 1:
        guess = next(iter(children.values()))
        return guess, f"only tables of {guess.name} reference it"
    return None
