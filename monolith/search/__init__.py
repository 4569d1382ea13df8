"""The search context: find threads and posts by text."""

from monolith.search.views import blueprint

__all__ = ["blueprint"]
