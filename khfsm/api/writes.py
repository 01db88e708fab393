"""A write transaction on the store's engine, flagged so that SQLite takes its write lock at
BEGIN (`khfsm.store.engine`): the API's writes share the database with the event writer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from khfsm.store.engine import WRITE


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    with engine.connect().execution_options(**{WRITE: True}) as connection, connection.begin():
        yield connection
