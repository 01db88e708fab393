"""The event store's tables, declared once. Alembic (`migrations/`) creates and alters them;
this module only describes them to SQLAlchemy Core and to Alembic's autogenerate.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

# Stable constraint names, so that migrations can refer to them on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

SESSION_ID_LENGTH = 64

# One row per session: a summary kept in step with its events (same transaction), so that
# listing sessions never needs a replay. The events remain the truth.
sessions = Table(
    "sessions",
    metadata,
    Column("session_id", String(SESSION_ID_LENGTH), primary_key=True),
    Column("task", String(32), nullable=False),
    Column("capture_id", BigInteger, nullable=False),
    Column("level", Integer, nullable=False),
    Column("fps", Float, nullable=False),
    Column("rules_version", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),
    Column("end_status", Integer, nullable=True),
    Column("count", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("frames", Integer, nullable=False),
    Column("events", Integer, nullable=False),
    Index("ix_sessions_task", "task"),
    Index("ix_sessions_capture_id", "capture_id"),
    Index("ix_sessions_created_at", "created_at"),
    Index("ix_sessions_end_status", "end_status"),
)

# The append-only streams. `payload` is the codec's canonical JSON kept as text, byte for
# byte: the hash is over that exact text, and JSONB would re-serialise it. `blob` holds the
# keypoints as raw float32.
events = Table(
    "events",
    metadata,
    Column(
        "session_id",
        String(SESSION_ID_LENGTH),
        ForeignKey("sessions.session_id"),
        primary_key=True,
    ),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("type", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("blob", LargeBinary, nullable=True),
    Column("hash", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# -- access to the HTTP API (khfsm.api) --------------------------------------------------------

USER_NAME_LENGTH = 64

# People who may read the evidence. `password_hash` is an argon2 hash (argon2-cffi's encoded
# form, parameters included), never the password.
users = Table(
    "users",
    metadata,
    Column("name", String(USER_NAME_LENGTH), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Bearer tokens for scripts. A token is 32 random bytes, so a plain SHA-256 of it is as good
# as a slow hash and lets a request find its row by equality; the token itself is shown once.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column(
        "user_name",
        String(USER_NAME_LENGTH),
        ForeignKey("users.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_api_tokens_user_name", "user_name"),
)

# Who read which evidence and who decided what, when. Names, not keys: a removed user's
# entries stay.
audit_log = Table(
    "audit_log",
    metadata,
    Column("entry_id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_name", String(USER_NAME_LENGTH), nullable=False),
    Column("action", String(32), nullable=False),
    Column("session_id", String(SESSION_ID_LENGTH), nullable=True),
    Column("detail", Text, nullable=False),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_session_id", "session_id"),
)
