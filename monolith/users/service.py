"""Users: sign up, sign in, profiles. Domain logic over a Session; knows no web framework."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contract.passwords import Passwords
from contract.requests import ProfileChange, SignIn, SignUp
from monolith.models import User
from strangler.plumbing.errors import Conflict, Forbidden, NotFound, Unauthorized

# Once users is a service, a token names a user the service created, and the row reaches the
# monolith's tables through the users feed a moment later (its lag: well under a second when
# the sync keeps up). A member who signs up and writes to a context the monolith still serves
# waits that moment instead of being told they do not exist. Nobody is ever deleted, so only a
# forged-but-signed id (impossible without the key) or a feed that stopped waits it in full.
USER_ARRIVAL_SECONDS = 3.0
ARRIVAL_POLL_SECONDS = 0.05


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


def signed_in_user(db: Session, user_id: int, patience: float = USER_ARRIVAL_SECONDS) -> User:
    """The user a valid token names, waiting up to `patience` seconds for a row that is on its
    way; a token for a user that still does not exist is a 401.

    Call it before the request writes anything: between two looks it ends the session's
    transaction, so the next look reads what the users feed has committed since."""
    deadline = time.monotonic() + patience
    while (user := db.get(User, user_id)) is None:
        if time.monotonic() >= deadline:
            raise Unauthorized("the token's user does not exist")
        db.rollback()
        time.sleep(ARRIVAL_POLL_SECONDS)
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
    if change.display_name is not None:
        user.display_name = change.display_name
    if change.bio is not None:
        user.bio = change.bio
    db.commit()
    return user
