"""The events the users service publishes (through its outbox) and their payloads.

It consumes none. Consumers and what they read:
- `users.user_registered`: the forum's author replica (`id`, `display_name`) and the reverse
  feed to the monolith after cutover, which needs the whole row to re-create it losslessly,
  hence `email` and `password_hash` (the Argon2 hash, never the password). Events stay on the
  internal bus; nothing public ever carries them.
- `users.user_renamed`: sent only when the display name really changed; the forum's replica.
- `users.profile_changed`: sent on any effective profile change, with the new profile; the
  reverse feed (a bio change is not a rename, but the monolith's row must follow it).
Payload timestamps are the contract's ISO form. Adding a field is compatible; removing or
renaming one needs a new topic.
"""

from __future__ import annotations

from typing import TypedDict

from extracted.users.models import User
from strangler.plumbing.clock import to_iso

USER_REGISTERED = "users.user_registered"
USER_RENAMED = "users.user_renamed"
PROFILE_CHANGED = "users.profile_changed"


class UserRegistered(TypedDict):
    id: int
    username: str
    email: str
    password_hash: str
    display_name: str
    bio: str
    created_at: str


class UserRenamed(TypedDict):
    id: int
    display_name: str
    previous_display_name: str


class ProfileChanged(TypedDict):
    id: int
    display_name: str
    bio: str


def user_registered(user: User) -> UserRegistered:
    return UserRegistered(
        id=user.id,
        username=user.username,
        email=user.email,
        password_hash=user.password_hash,
        display_name=user.display_name,
        bio=user.bio,
        created_at=to_iso(user.created_at),
    )


def user_renamed(user: User, previous_display_name: str) -> UserRenamed:
    return UserRenamed(
        id=user.id, display_name=user.display_name, previous_display_name=previous_display_name
    )


def profile_changed(user: User) -> ProfileChanged:
    return ProfileChanged(id=user.id, display_name=user.display_name, bio=user.bio)
