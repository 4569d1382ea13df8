"""The polls context: polls, one vote per user per poll, results and the static results page."""

from monolith.polls.views import blueprint

__all__ = ["blueprint"]
