"""The workspace file, `strangler.toml`, as typed models: the one registry of a migration.

It names the monolith (its app, how it is served, its database), the contexts (the routes each
claims, the tables it owns with their mapping to the service's, its replica feeds, its hooks),
each context's service (its app, database, alembic environment, event consumer), the route
inventory, the stages in order, the checkpoint's reads, the probes' hints and the load
scenario. Every model is strict (an unknown key is an error) and frozen. This module must never
import a user's code, open a database or read the environment: it only says what the file means.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from strangler_proxy.table import Fallback, IgnoreRule

NAME = r"^[a-z][a-z0-9_]{0,30}$"
# Names a context may not take: they name other processes or databases of every system.
RESERVED = frozenset({"monolith", "proxy", "bus", "nginx", "console"})
# `package.module:attribute` or `package.module:attribute.attribute`.
IMPORT_PATH = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"
PLACEHOLDER = re.compile(r"\{(state|port|root|url:[a-z][a-z0-9_]*)\}")

ImportPath = Annotated[str, Field(pattern=IMPORT_PATH)]
Name = Annotated[str, Field(pattern=NAME)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSpec(Strict):
    """A database: the variable its process reads its URL from, and its alembic environment
    (a folder relative to the workspace root). Unset, the URL is a SQLite file of the system's
    state folder."""

    url_variable: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")] | None = None
    alembic: str | None = None
    metadata: ImportPath | None = None  # the models' MetaData; else the database is reflected


class MonolithSpec(Strict):
    """The monolith: a Flask app, and how it is served."""

    app: ImportPath
    # "gunicorn": `gunicorn [gunicorn_args] app`; else a command line with a `{port}`.
    serve: Literal["gunicorn"] | list[str] = "gunicorn"
    gunicorn_args: list[str] = []
    workers: Annotated[int, Field(ge=1, le=64)] = 2
    database: DatabaseSpec = DatabaseSpec()
    health_path: str | None = "/healthz"  # "" (or None): a TCP check of its port
    seed: ImportPath | None = None  # (engine, scale, seed_value, progress) -> report | None
    env: dict[str, str] = {}

    @field_validator("health_path")
    @classmethod
    def _no_health_path(cls, path: str | None) -> str | None:
        return path or None

    @field_validator("serve")
    @classmethod
    def _port_placeholder(cls, serve: Any) -> Any:
        if isinstance(serve, list) and not any("{port}" in part for part in serve):
            raise ValueError("a command that serves the monolith needs a {port} placeholder")
        return serve


class ServiceSpec(Strict):
    """A context's service: an ASGI app (or a command with `{port}`), its database, and the
    event consumer it runs, if any."""

    app: ImportPath | None = None
    command: list[str] | None = None
    database: DatabaseSpec = DatabaseSpec()
    consumer: ImportPath | None = None
    health_path: str | None = "/healthz"  # "": a TCP check of its port
    # Extra environment of the service and of its event processes. Placeholders: {state} (the
    # system's state folder), {root} (the workspace), {url:CONTEXT} (that context's service,
    # the variable left out while it does not run).
    env: dict[str, str] = {}

    @field_validator("health_path")
    @classmethod
    def _no_health_path(cls, path: str | None) -> str | None:
        return path or None

    @model_validator(mode="after")
    def _one_way_to_run(self) -> Self:
        if (self.app is None) == (self.command is None):
            raise ValueError("a service names either `app` (an ASGI app) or `command`")
        if self.command is not None and not any("{port}" in part for part in self.command):
            raise ValueError("a service's command needs a {port} placeholder")
        return self


Scalar = str | int | float | bool


class TableMapSpec(Strict):
    """One table a feed copies: its name on each side, the columns copied (a list of shared
    names, or monolith name -> service name), its key (monolith names; default: the primary
    key), and values for columns only one side's table has ("now" is the time of the copy):
    `service_defaults` on every copy into the service, `monolith_defaults` on copies back."""

    monolith: Annotated[str, Field(min_length=1)]
    service: str | None = None  # default: the same name
    columns: list[str] | dict[str, str] | None = None  # default: every column of the monolith's
    key: list[str] | None = None
    service_defaults: dict[str, Scalar] = {}
    monolith_defaults: dict[str, Scalar] = {}

    @property
    def service_name(self) -> str:
        return self.service or self.monolith


class FeedSpec(Strict):
    """A replica feed: data the service reads but never owns, always monolith -> service."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,40}$")]
    tables: Annotated[list[TableMapSpec], Field(min_length=1)]


class RouteClaim(Strict):
    """Which routes of the inventory a context owns: by blueprint, endpoint name or path."""

    blueprints: list[str] = []
    endpoints: list[str] = []
    paths: list[str] = []


class HooksSpec(Strict):
    """A context's own code the data path calls, as import paths.

    on_service_rows(connection, table, rows): in the transaction that writes copied or synced
        rows into the service (polls: refresh the results they touch);
    before_flip(engine, settings): at cutover, under the freeze, just before the routes flip;
    build(monolith_engine_or_none, databases, settings) -> int: a context that owns no table
        builds its data instead of moving it (search: its index from the forum's data).
    """

    on_service_rows: ImportPath | None = None
    before_flip: ImportPath | None = None
    build: ImportPath | None = None


BUCKET_NAME = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_KEY_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ServerlessSpec(Strict):
    """A context served as functions (docs/serverless.md): an API Gateway HTTP API handler,
    the stream handler its table's changes feed, the table (an import path to the keyword
    arguments of DynamoDB's `create_table`), the bucket of its static pages and the key
    template of a page (`results/{poll_id}.html`, served at the route `/results/{poll_id}.html`),
    and extra environment of its functions."""

    handler: ImportPath
    stream_handler: ImportPath | None = None
    table: ImportPath | None = None
    bucket: Annotated[str, Field(pattern=BUCKET_NAME)] | None = None
    pages: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    items: ImportPath | None = None
    env: dict[str, str] = {}

    @field_validator("pages")
    @classmethod
    def _key_template(cls, pages: str | None) -> str | None:
        if pages is None:
            return None
        if pages.startswith("/"):
            raise ValueError("a key template names a key in the bucket: no leading '/'")
        names = _KEY_PLACEHOLDER.findall(pages)
        if len(names) != len(set(names)):
            raise ValueError("a placeholder is used twice in the key template")
        if "{" in _KEY_PLACEHOLDER.sub("", pages) or "}" in _KEY_PLACEHOLDER.sub("", pages):
            raise ValueError("a placeholder of the key template is `{name}`")
        return pages

    @model_validator(mode="after")
    def _parts_that_need_others(self) -> Self:
        if self.stream_handler is not None and self.table is None:
            raise ValueError("a stream handler reads a table's stream: declare `table`")
        if self.pages is not None and self.bucket is None:
            raise ValueError("pages are keys of a bucket: declare `bucket`")
        if self.items is not None and self.table is None:
            raise ValueError("items are a table's: declare `table`")
        return self

    @property
    def pages_route_path(self) -> str | None:
        """The route path that serves the pages (`/` + the key template)."""
        return None if self.pages is None else "/" + self.pages


class ShadowSkip(Strict):
    """A read route whose shadow comparison is shown but not judged, and why."""

    route: Annotated[str, Field(min_length=1)]
    reason: Annotated[str, Field(min_length=10, max_length=300)]


class ContextSpec(Strict):
    """A bounded context: what it claims of the monolith, and its service (none yet: a context
    `strangler init` found, before `strangler new service` scaffolds one; no stage can
    extract it until then)."""

    routes: RouteClaim = RouteClaim()
    tables: list[TableMapSpec] = []
    replicas: list[FeedSpec] = []
    needs: list[str] = []
    service: ServiceSpec | None = None
    hooks: HooksSpec = HooksSpec()
    shadow_skips: list[ShadowSkip] = []
    serverless: ServerlessSpec | None = None

    @property
    def moves_data(self) -> bool:
        """Whether extracting it moves tables the monolith owns today."""
        return bool(self.tables)

    @property
    def runs(self) -> ServiceSpec:
        """Its service, which a context that is extracted always has."""
        if self.service is None:
            raise ValueError("this context has no service yet: `strangler new service` makes one")
        return self.service


class RouteSpec(Strict):
    """One route of the inventory (`strangler init` writes them from the app's URL map)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,80}$")]
    methods: Annotated[list[str], Field(min_length=1)]
    path: Annotated[str, Field(min_length=1, max_length=300)]
    blueprint: str | None = None
    connect_timeout: Annotated[float, Field(gt=0, le=60)] | None = None
    read_timeout: Annotated[float, Field(gt=0, le=600)] | None = None
    fallback: Fallback = Fallback.MONOLITH
    shadow_ignore: list[IgnoreRule] = []

    @property
    def endpoint(self) -> str:
        return self.name


class StageSpec(Strict):
    """One stage after stage 0 (all monolith): it extracts a context, or retires the monolith
    (then `unmatched` names the service that answers paths no route knows)."""

    title: Annotated[str, Field(min_length=1, max_length=80)]
    summary: Annotated[str, Field(min_length=1, max_length=300)]
    extract: str | None = None
    # What the extracted context runs as: its service (a long-running process on SQL), or
    # functions over DynamoDB and a bucket (its `serverless` declaration; docs/serverless.md).
    target: Literal["service", "serverless"] = "service"
    retire_monolith: bool = False
    unmatched: str | None = None

    @model_validator(mode="after")
    def _one_change(self) -> Self:
        if (self.extract is None) == (not self.retire_monolith):
            raise ValueError("a stage either extracts a context or retires the monolith")
        if self.retire_monolith and self.unmatched is None:
            raise ValueError("retiring the monolith names the service of `unmatched`")
        if self.target == "serverless" and self.extract is None:
            raise ValueError("`target` says what an extracted context runs as: extract one")
        return self


class CheckRead(Strict):
    """A read `strangler check` sends through the public entry: its path, the status it must
    answer, and the route that serves it (None: no route; the table's `unmatched` answers)."""

    path: Annotated[str, Field(pattern=r"^/")]
    status: Annotated[int, Field(ge=100, le=599)] = 200
    route: str | None = None


class ParameterSource(Strict):
    """Where probes find values of a path parameter: a URL listing them and the field of its
    items (`items` of a JSON page, or the top-level array), or fixed values."""

    url: str | None = None
    field: str = "id"
    values: list[Scalar] = []


class SignIn(Strict):
    """How probes sign in as a few existing users: list them, post the credentials, read the
    token (sent as a bearer token on routes that need one)."""

    users: str
    username_field: str = "username"
    path: str
    password: str
    token_field: str = "token"
    routes: list[str] = []  # read routes that need a signed-in user


class ProbesSpec(Strict):
    """Hints for the sample reads of the shadow and canary gates on an idle system."""

    parameters: dict[str, ParameterSource] = {}
    queries: dict[str, str] = {}  # path -> query string added to it
    sign_in: SignIn | None = None


class LoadSpec(Strict):
    """The load scenario `compare` runs, and the steady load of the demo."""

    locustfile: str | None = None
    scenario: str | None = None
    # (scale, token_secret) -> dict: what the seeded data holds, handed to the locustfile.
    plan_data: ImportPath | None = None
    steady: ImportPath | None = None


class SystemSpec(Strict):
    """How `strangler up` and the demo run the system (their flags override it)."""

    # Who serves the public port: the Python proxy, or nginx in front of it (docs/proxy.md).
    data_plane: Literal["python", "nginx"] = "python"


class WorkspaceFile(Strict):
    """The whole `strangler.toml`, checked as a whole."""

    monolith: MonolithSpec
    contexts: dict[Name, ContextSpec] = {}
    routes: list[RouteSpec] = []
    shadow_ignore: list[IgnoreRule] = []
    stages: list[StageSpec] = []
    check: dict[Literal["reads"], list[CheckRead]] = {}
    probes: ProbesSpec = ProbesSpec()
    load: LoadSpec = LoadSpec()
    system: SystemSpec = SystemSpec()

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        for name in self.contexts:
            if name in RESERVED:
                raise ValueError(f"contexts.{name}: {name!r} is reserved; name the context else")
        self._routes_unique()
        self._claims_resolve()
        self._stages_in_order()
        return self

    def _routes_unique(self) -> None:
        seen: set[str] = set()
        for index, route in enumerate(self.routes):
            if route.name in seen:
                raise ValueError(f"routes.{index}: the name {route.name!r} is used twice")
            seen.add(route.name)

    def _claims_resolve(self) -> None:
        claimed: dict[str, str] = {}
        for context, spec in self.contexts.items():
            for route in self.routes_claimed_by(context):
                if route.name in claimed:
                    raise ValueError(
                        f"contexts.{context}.routes: route {route.name!r} is claimed by"
                        f" {claimed[route.name]} too"
                    )
                claimed[route.name] = context
            for skip in spec.shadow_skips:
                if skip.route not in {route.name for route in self.routes_claimed_by(context)}:
                    raise ValueError(
                        f"contexts.{context}.shadow_skips: {skip.route!r} is not a route of"
                        f" {context}"
                    )
            self._pages_routed(context, spec)
            unknown = [need for need in spec.needs if need not in self.contexts]
            if unknown:
                raise ValueError(f"contexts.{context}.needs: unknown contexts {unknown}")

    def _pages_routed(self, context: str, spec: ContextSpec) -> None:
        serverless = spec.serverless
        if serverless is None or serverless.pages_route_path is None or not self.routes:
            return
        paths = {route.path for route in self.routes_claimed_by(context)}
        if serverless.pages_route_path not in paths:
            raise ValueError(
                f"contexts.{context}.serverless.pages: no route of {context} has the path"
                f" {serverless.pages_route_path} that serves these pages"
            )

    def _stages_in_order(self) -> None:
        extracted: list[str] = []
        serverless = {s.extract for s in self.stages if s.target == "serverless"}
        retired = False
        for index, stage in enumerate(self.stages):
            where = f"stages.{index}"
            if retired:
                raise ValueError(f"{where}: nothing comes after the monolith retires")
            if stage.extract is not None:
                context = stage.extract
                if context not in self.contexts:
                    raise ValueError(f"{where}: unknown context {context!r}")
                if context in extracted:
                    raise ValueError(f"{where}: {context} is extracted twice")
                if stage.target == "serverless":
                    self._serverless_target(where, context)
                elif self.contexts[context].service is None:
                    raise ValueError(
                        f"{where}: {context} has no service yet; `strangler new service"
                        f" {context}` scaffolds one and adds it here"
                    )
                missing = [n for n in self.contexts[context].needs if n not in extracted]
                if missing:
                    raise ValueError(f"{where}: {context} needs {missing} extracted first")
                extracted.append(context)
            else:
                left = sorted(set(self.contexts) - set(extracted))
                if left:
                    raise ValueError(f"{where}: the monolith still serves {left}")
                if stage.unmatched not in self.contexts:
                    raise ValueError(f"{where}: unmatched names no context: {stage.unmatched!r}")
                if stage.unmatched in serverless:
                    raise ValueError(
                        f"{where}: unmatched names {stage.unmatched}, which runs as functions;"
                        " name a context served by its service"
                    )
                retired = True

    def _serverless_target(self, where: str, context: str) -> None:
        declared = self.contexts[context].serverless
        if declared is None or declared.table is None or declared.items is None:
            raise ValueError(
                f"{where}: {context} runs as functions only with [contexts.{context}.serverless]"
                " declaring `table` and `items` (docs/serverless.md)"
            )

    def routes_claimed_by(self, context: str) -> list[RouteSpec]:
        claim = self.contexts[context].routes
        return [
            route
            for route in self.routes
            if route.blueprint in claim.blueprints
            or route.name in claim.endpoints
            or route.path in claim.paths
        ]

    def context_of(self, route: RouteSpec) -> str | None:
        """The context that claims `route`, or None (it stays the monolith's)."""
        for context in self.contexts:
            if route in self.routes_claimed_by(context):
                return context
        return None
