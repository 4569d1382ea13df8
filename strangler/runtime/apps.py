"""Serve a workspace's apps by import path: the monolith under gunicorn, a service under uvicorn.

A workspace names its apps as `module:attribute`, which may be the app itself (a Flask app, a
FastAPI app, any WSGI or ASGI callable) or a factory that builds one. The servers get a factory
of ours that resolves the path from the environment and calls a factory when it is one:

    STRANGLER_WSGI_APP=monolith:create_app gunicorn 'strangler.runtime.apps:wsgi()'
    STRANGLER_ASGI_APP=extracted.users:create_app uvicorn --factory strangler.runtime.apps:asgi

The workspace root is on the child's PYTHONPATH. This module must never serve anything itself.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from strangler.plumbing.imports import resolve

WSGI_VARIABLE = "STRANGLER_WSGI_APP"
ASGI_VARIABLE = "STRANGLER_ASGI_APP"


def is_factory(found: Any) -> bool:
    """A plain function or class that takes no required argument builds the app; anything
    else (an app object, a WSGI or ASGI function with its own arguments) is the app."""
    if not (inspect.isfunction(found) or inspect.isclass(found)):
        return False
    if inspect.iscoroutinefunction(found):
        return False
    parameters = inspect.signature(found).parameters.values()
    return all(
        parameter.default is not inspect.Parameter.empty
        or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        for parameter in parameters
    )


def load(variable: str) -> Any:
    found = resolve(os.environ[variable])
    return found() if is_factory(found) else found


def wsgi() -> Any:
    """gunicorn's factory: the app `STRANGLER_WSGI_APP` names."""
    return load(WSGI_VARIABLE)


def asgi() -> Any:
    """uvicorn's factory: the app `STRANGLER_ASGI_APP` names."""
    return load(ASGI_VARIABLE)
