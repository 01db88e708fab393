"""Users, their passwords and bearer tokens, in the event store's database.

Passwords are argon2id hashes (argon2-cffi's encoded form carries its own parameters, so a
later change of parameters still verifies old hashes and `needs_rehash` upgrades them at the
next login). Tokens are 32 random bytes shown once; only their SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from khfsm.api.writes import writing
from khfsm.errors import KhfsmError
from khfsm.store import schema

_users = schema.users
_tokens = schema.api_tokens
_hasher = PasswordHasher()
TOKEN_PREFIX = "khfsm_"


class Role(StrEnum):
    """What a user may do; each role may do everything the ones before it may."""

    OPERATOR = "operator"  # read sessions and evidence, export bundles and results
    REVIEWER = "reviewer"  # also record decisions on repetitions and verdicts
    ADMIN = "admin"  # also read the audit log (users are managed with `khfsm users`)

    def allows(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


class AccountError(KhfsmError):
    """A user or token operation was refused; the message says why."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class UserListing:
    name: str
    role: Role
    created_at: datetime
    tokens: int


class Accounts:
    """The users table and the tokens table. Blocking: call from a worker thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, name: str, role: Role, password: str) -> User:
        name = _checked_name(name)
        if len(password) < 8:
            raise AccountError("a password needs at least 8 characters")
        row = {
            "name": name,
            "role": role.value,
            "password_hash": _hasher.hash(password),
            "created_at": datetime.now(UTC),
        }
        try:
            with writing(self._engine) as connection:
                connection.execute(insert(_users), [row])
        except IntegrityError as error:
            raise AccountError(f"user {name!r} already exists") from error
        return User(name, role)

    def remove(self, name: str) -> None:
        with writing(self._engine) as connection:
            connection.execute(delete(_tokens).where(_tokens.c.user_name == name))
            removed = connection.execute(delete(_users).where(_users.c.name == name))
        if removed.rowcount != 1:
            raise AccountError(f"no user {name!r}")

    def listing(self) -> list[UserListing]:
        with self._engine.connect() as connection:
            users = connection.execute(select(_users).order_by(_users.c.name)).all()
            owners = connection.execute(select(_tokens.c.user_name)).scalars().all()
        return [
            UserListing(
                name=row.name,
                role=Role(row.role),
                created_at=row.created_at,
                tokens=sum(1 for owner in owners if owner == row.name),
            )
            for row in users
        ]

    def user(self, name: str) -> User | None:
        with self._engine.connect() as connection:
            row = connection.execute(select(_users).where(_users.c.name == name)).first()
        return None if row is None else User(row.name, Role(row.role))

    def login(self, name: str, password: str) -> User | None:
        """The user when `password` is theirs, else None (unknown name or wrong password)."""
        with self._engine.connect() as connection:
            row = connection.execute(select(_users).where(_users.c.name == name)).first()
        if row is None:
            # Hash anyway, so that the response time does not tell which names exist.
            _hasher.hash(password)
            return None
        try:
            _hasher.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if _hasher.check_needs_rehash(row.password_hash):
            with writing(self._engine) as connection:
                connection.execute(
                    update(_users)
                    .where(_users.c.name == name)
                    .values(password_hash=_hasher.hash(password))
                )
        return User(row.name, Role(row.role))

    def issue_token(self, name: str) -> str:
        """A new bearer token for `name`: returned once, stored only as its hash."""
        if self.user(name) is None:
            raise AccountError(f"no user {name!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = {"token_hash": token_hash(token), "user_name": name, "created_at": datetime.now(UTC)}
        with writing(self._engine) as connection:
            connection.execute(insert(_tokens), [row])
        return token

    def revoke_tokens(self, name: str) -> int:
        with writing(self._engine) as connection:
            return connection.execute(delete(_tokens).where(_tokens.c.user_name == name)).rowcount

    def bearer(self, token: str) -> User | None:
        """The user a bearer token belongs to, or None."""
        query = (
            select(_users.c.name, _users.c.role)
            .join(_tokens, _tokens.c.user_name == _users.c.name)
            .where(_tokens.c.token_hash == token_hash(token))
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else User(row.name, Role(row.role))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > schema.USER_NAME_LENGTH or not name.isprintable():
        raise AccountError(
            f"a user name is 1 to {schema.USER_NAME_LENGTH} printable characters, not {name!r}"
        )
    return name
