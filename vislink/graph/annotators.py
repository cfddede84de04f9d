"""Annotator accounts: names, bcrypt (salted) password hashes, sign-in checks.

An account without a password (``password_hash`` None) cannot sign in with a password: it is for
imports (``get_or_create``) and for single sign-on set up elsewhere.

``sign_in`` throttles guessing: after ``FREE_FAILURES`` consecutive failures for one name (known or not, so that a
lock tells nothing about which names exist), each further failure locks the name for ``LOCK_BASE_S`` seconds,
doubled each time up to ``LOCK_MAX_S``; while locked, no password is even checked. The counts are rows of
``sign_in_failures`` in the store: a rerun, another browser or another UI process sees the same lock. A success
clears them; failures older than ``FORGET_AFTER_S`` are forgotten."""

from __future__ import annotations

import math
import re
import time

import bcrypt
from sqlalchemy import case, delete, select, update
from sqlalchemy.orm import Session

from vislink.errors import NotFound, VislinkError
from vislink.store.models import Annotator, SignInFailure

BCRYPT_ROUNDS = 12  # ~0.2 s per check: slow for guessing, fine for a sign-in; tests lower it
MIN_PASSWORD_LENGTH = 8
FREE_FAILURES = 5  # wrong passwords allowed for a name before it is locked
LOCK_BASE_S = 30.0  # first lock; doubled at each further failure
LOCK_MAX_S = 15 * 60.0
FORGET_AFTER_S = 24 * 3600.0  # failures this old no longer count
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
    """A new password (or none); the name's failed sign-ins are forgotten (a reset unlocks it)."""
    annotator = get_annotator(session, name)
    annotator.password_hash = hash_password(password) if password is not None else None
    clear_sign_in_failures(session, annotator.name)
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


class SignInLocked(VislinkError):
    """Too many failed sign-ins for a name: ``name``, ``retry_after`` (seconds)."""

    def __init__(self, name: str, retry_after: float):
        self.name, self.retry_after = name, retry_after
        super().__init__(f"too many failed sign-ins for {name!r}: try again in {_duration(retry_after)}")


def sign_in(session: Session, name: str, password: str, *, now: float | None = None) -> Annotator:
    """The annotator for ``name`` and ``password``, throttled (see the module docstring). Raises ``SignInLocked``
    while the name is locked (the password is not checked), ``VislinkError`` for a wrong name or password.
    Commits the failure count itself, so that a caller rolling back does not undo it."""
    now = time.time() if now is None else now
    key = _throttle_key(name)
    row = session.get(SignInFailure, key)
    if row is not None and row.last_failure_at >= now - FORGET_AFTER_S and row.locked_until \
            and row.locked_until > now:
        raise SignInLocked(name.strip(), row.locked_until - now)
    annotator = verify_password(session, name or "", password)
    if annotator is not None:
        if row is not None:
            session.delete(row)
            session.commit()
        return annotator
    locked_for = _record_failure(session, key, now)
    if locked_for:
        raise SignInLocked(name.strip(), locked_for)
    raise VislinkError("unknown annotator or wrong password")


def sign_in_failures(session: Session, name: str) -> int:
    """Consecutive failed sign-ins counted for ``name``."""
    row = session.get(SignInFailure, _throttle_key(name), populate_existing=True)
    return row.failures if row is not None else 0


def clear_sign_in_failures(session: Session, name: str) -> None:
    """Unlock ``name`` (an administrator; ``set_password`` does it too)."""
    session.execute(delete(SignInFailure).where(SignInFailure.name == _throttle_key(name)))
    session.flush()


def _record_failure(session: Session, key: str, now: float) -> float:
    """Count one failure, committed; the lock it starts, in seconds (0: none yet). One atomic upsert, so that
    failures at the same moment (threads, UI processes) are all counted."""
    session.commit()  # a fresh transaction: SQLite (WAL) cannot turn an older read snapshot into a write
    table = SignInFailure.__table__
    forgotten = table.c.last_failure_at < now - FORGET_AFTER_S
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - vislink's stores are SQLite and PostgreSQL
        raise VislinkError(f"sign-in throttling needs SQLite or PostgreSQL, not {dialect}")
    session.execute(insert(table).values(name=key, failures=1, last_failure_at=now, locked_until=None)
                    .on_conflict_do_update(index_elements=[table.c.name], set_={
                        "failures": case((forgotten, 1), else_=table.c.failures + 1),
                        "last_failure_at": now}))
    failures = session.scalar(select(table.c.failures).where(table.c.name == key))
    over = failures - FREE_FAILURES
    locked_for = min(LOCK_MAX_S, LOCK_BASE_S * 2 ** (over - 1)) if over > 0 else 0.0
    session.execute(update(table).where(table.c.name == key)
                    .values(locked_until=now + locked_for if locked_for else None))
    session.execute(delete(table).where(forgotten))  # bounded: names tried once long ago go
    session.commit()
    return locked_for


def _throttle_key(name: str) -> str:
    return (name or "").strip().lower()[:100]


def _duration(seconds: float) -> str:
    seconds = max(1, math.ceil(seconds))
    return f"{seconds} s" if seconds < 120 else f"{math.ceil(seconds / 60)} min"
