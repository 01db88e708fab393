"""Direct SQL on a store, bypassing the recorder: how the tests play the tamperer."""

from __future__ import annotations

from typing import Any

import sqlalchemy

from khfsm.store.engine import WRITE, create_store_engine


def execute(url: str, sql: str, **params: Any) -> int:
    """Run one statement in its own transaction; returns the number of rows it touched."""
    engine = create_store_engine(url)
    try:
        with engine.connect().execution_options(**{WRITE: True}) as connection:
            with connection.begin():
                result = connection.execute(sqlalchemy.text(sql), params)
            return result.rowcount
    finally:
        engine.dispose()


def scalar(url: str, sql: str, **params: Any) -> Any:
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(sqlalchemy.text(sql), params).scalar()
    finally:
        engine.dispose()
