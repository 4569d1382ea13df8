"""Users: sign up, sign in, profiles. Domain logic over a Session; knows no web framework.

Behaves exactly as the monolith's users context (same checks, same errors, same order), and
records each change's event in the outbox within the change's own transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contract.passwords import Passwords
from contract.requests import ProfileChange, SignIn, SignUp
from extracted.users import events
from extracted.users.models import User, outbox
from strangler.events.outbox import record
from strangler.plumbing.errors import Conflict, Forbidden, NotFound, Unauthorized


def sign_up(db: Session, passwords: Passwords, request: SignUp) -> User:
    email = request.email.lower()
    taken = db.scalar(
        select(User.username).where((User.username == request.username) | (User.email == email))
    )
    if taken is not None:
        raise Conflict("that username or email is already taken")
    user = User(
        username=request.username,
        email=email,
        password_hash=passwords.hash(request.password),
        display_name=request.display_name,
        bio="",
    )
    db.add(user)
    try:
        db.flush()  # the id and created_at the event carries
        record(db, outbox, events.USER_REGISTERED, user.id, dict(events.user_registered(user)))
        db.commit()
    except IntegrityError as error:  # a concurrent sign-up won the race
        db.rollback()
        raise Conflict("that username or email is already taken") from error
    return user


def sign_in(db: Session, passwords: Passwords, request: SignIn) -> User:
    user = db.scalar(select(User).where(User.username == request.username))
    if user is None or not passwords.matches(user.password_hash, request.password):
        raise Unauthorized("unknown username or wrong password")
    return user


class UserView(NamedTuple):
    """A user as a read shows them: the public columns only (never the email or the hash)."""

    id: int
    username: str
    display_name: str
    bio: str
    created_at: datetime


# Reads are Core statements built once, on a plain connection: no Session, no identity map,
# no statement built per request (docs/services.md, "making a service fast").
_USERS = select(User.id, User.username, User.display_name, User.bio, User.created_at)
_USER = _USERS.where(User.id == bindparam("user_id"))
_USERS_AFTER = (
    _USERS.where(User.id > bindparam("after_id")).order_by(User.id).limit(bindparam("limit"))
)


def get_user(db: Connection, user_id: int) -> UserView:
    row = db.execute(_USER, {"user_id": user_id}).first()
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    return UserView._make(row)


def signed_in_user(db: Connection, user_id: int) -> UserView:
    """The user a valid token names; a token for a user that no longer exists is a 401."""
    row = db.execute(_USER, {"user_id": user_id}).first()
    if row is None:
        raise Unauthorized("the token's user does not exist")
    return UserView._make(row)


def list_users(db: Connection, after_id: int | None, limit: int) -> list[UserView]:
    """Oldest first; one row more than asked, so the caller knows if there is a next page."""
    page = {"after_id": after_id or 0, "limit": limit + 1}
    return [UserView._make(row) for row in db.execute(_USERS_AFTER, page)]


def change_profile(db: Session, actor_id: int, user_id: int, change: ProfileChange) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    if user.id != actor_id:
        raise Forbidden("you may only change your own profile")
    previous_display_name, previous_bio = user.display_name, user.bio
    if change.display_name is not None:
        user.display_name = change.display_name
    if change.bio is not None:
        user.bio = change.bio
    if user.display_name != previous_display_name:
        event = events.user_renamed(user, previous_display_name)
        record(db, outbox, events.USER_RENAMED, user.id, dict(event))
    if (user.display_name, user.bio) != (previous_display_name, previous_bio):
        record(db, outbox, events.PROFILE_CHANGED, user.id, dict(events.profile_changed(user)))
    db.commit()
    return user
