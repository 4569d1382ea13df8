"""The users context: sign up, sign in, profiles."""

from monolith.users.views import blueprint

__all__ = ["blueprint"]
