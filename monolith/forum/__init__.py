"""The forum context: threads and posts."""

from monolith.forum.views import blueprint

__all__ = ["blueprint"]
