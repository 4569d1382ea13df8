"""Plumbing shared by the monolith and every extracted service.

Errors, request ids, structured logs, metrics, tokens, passwords, pagination and the public
contract's request models live here, framework-agnostic, with one thin adapter per web framework
(`strangler.plumbing.flask`, `strangler.plumbing.fastapi`). Domain code of any context never lives
here: each side owns its own data and models.
"""
