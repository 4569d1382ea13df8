"""Fixtures of the serverless suite: the proxy suite's real proxy processes."""

from tests.proxy.conftest import client, proxy_factory

__all__ = ["client", "proxy_factory"]
