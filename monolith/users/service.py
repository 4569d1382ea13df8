"""Users: sign up, sign in, profiles. Domain logic over a Session; knows no web framework."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contract.passwords import Passwords
from contract.requests import ProfileChange, SignIn, SignUp
from monolith.models import User
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
    if change.display_name is not None:
        user.display_name = change.display_name
    if change.bio is not None:
        user.bio = change.bio
    db.commit()
    return user
