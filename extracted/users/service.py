"""Users: sign up, sign in, profiles. Domain logic over a Session; knows no web framework.

Behaves exactly as the monolith's users context (same checks, same errors, same order), and
records each change's event in the outbox within the change's own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
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


def get_user(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def signed_in_user(db: Session, user_id: int) -> User:
    """The user a valid token names; a token for a user that no longer exists is a 401."""
    user = db.get(User, user_id)
    if user is None:
        raise Unauthorized("the token's user does not exist")
    return user


def list_users(db: Session, after_id: int | None, limit: int) -> Sequence[User]:
    """Oldest first; one row more than asked, so the caller knows if there is a next page."""
    query = select(User).order_by(User.id).limit(limit + 1)
    if after_id is not None:
        query = query.where(User.id > after_id)
    return db.scalars(query).all()


def change_profile(db: Session, actor_id: int, user_id: int, change: ProfileChange) -> User:
    user = get_user(db, user_id)
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
