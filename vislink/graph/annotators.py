"""Annotator accounts: names, bcrypt (salted) password hashes, sign-in checks.

An account without a password (``password_hash`` None) cannot sign in with a password: it is for
imports (``get_or_create``) and for single sign-on set up elsewhere."""

from __future__ import annotations

import re

import bcrypt
from sqlalchemy import select
from sqlalchemy.orm import Session

from vislink.errors import NotFound, VislinkError
from vislink.store.models import Annotator

BCRYPT_ROUNDS = 12  # ~0.2 s per check: slow for guessing, fine for a sign-in; tests lower it
MIN_PASSWORD_LENGTH = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_dummy: dict[int, bytes] = {}


def _dummy_hash() -> bytes:
    # Checked against when the account is unknown, so that unknown names take as long as wrong passwords.
    if BCRYPT_ROUNDS not in _dummy:
        _dummy[BCRYPT_ROUNDS] = bcrypt.hashpw(b"no such account", bcrypt.gensalt(rounds=BCRYPT_ROUNDS))
    return _dummy[BCRYPT_ROUNDS]


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.match(name):
        raise VislinkError(f"annotator name {name!r} is not valid: 1-100 letters, digits, '.', '_', '@' or '-', "
                           "starting with a letter or digit")
    return name


def hash_password(password: str) -> str:
    data = password.encode("utf-8")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise VislinkError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    if len(data) > 72:  # bcrypt reads 72 bytes at most; refuse rather than silently ignore the rest
        raise VislinkError("password too long: at most 72 bytes (bcrypt's limit)")
    return bcrypt.hashpw(data, bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode("ascii")


def find_annotator(session: Session, name: str) -> Annotator | None:
    return session.scalar(select(Annotator).where(Annotator.name == name.strip()))


def get_annotator(session: Session, name: str) -> Annotator:
    annotator = find_annotator(session, name)
    if annotator is None:
        names = session.scalars(select(Annotator.name).order_by(Annotator.name).limit(20)).all()
        raise NotFound(f"no annotator {name!r}; annotators: {', '.join(names) or 'none yet (vislink annotator add)'}")
    return annotator


def create_annotator(session: Session, name: str, password: str | None = None, *, display_name: str | None = None,
                     email: str | None = None) -> Annotator:
    """A new account; the password (optional) is stored only as a salted bcrypt hash."""
    name = _check_name(name)
    if find_annotator(session, name) is not None:
        raise VislinkError(f"annotator {name!r} already exists")
    annotator = Annotator(name=name, display_name=display_name, email=email, is_active=True,
                          password_hash=hash_password(password) if password is not None else None)
    session.add(annotator)
    session.flush()
    return annotator


def set_password(session: Session, name: str, password: str | None) -> Annotator:
    annotator = get_annotator(session, name)
    annotator.password_hash = hash_password(password) if password is not None else None
    session.flush()
    return annotator


def verify_password(session: Session, name: str, password: str) -> Annotator | None:
    """The active annotator with this name and password, or None (unknown name, wrong password, no password
    set, deactivated). Takes about as long whatever the reason, so that names cannot be probed."""
    annotator = find_annotator(session, name or "")
    stored = annotator.password_hash.encode("ascii") if annotator is not None and annotator.password_hash else None
    data = (password or "").encode("utf-8")[:72]
    ok = bcrypt.checkpw(data, stored or _dummy_hash())
    if stored is None or not ok or not annotator.is_active:
        return None
    return annotator


def get_or_create(session: Session, name: str, *, display_name: str | None = None,
                  email: str | None = None) -> Annotator:
    """The annotator with this name, created without a password when missing (imports)."""
    annotator = find_annotator(session, name)
    if annotator is not None:
        return annotator
    return create_annotator(session, name, None, display_name=display_name, email=email)


def list_annotators(session: Session) -> list[Annotator]:
    return list(session.scalars(select(Annotator).order_by(Annotator.name)))


def set_active(session: Session, name: str, active: bool) -> Annotator:
    annotator = get_annotator(session, name)
    annotator.is_active = active
    session.flush()
    return annotator
