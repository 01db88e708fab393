"""Store fixtures: an empty database per test on each backend.

PostgreSQL tests each get a schema of their own (selected through the connection's
search_path), dropped afterwards, so they never see each other's rows or tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from khfsm.store.urls import parse_url


@pytest.fixture
def sqlite_empty_url(tmp_path: Path) -> str:
    # A directory that does not exist yet: opening the store must create it.
    return f"sqlite:///{tmp_path / 'data' / 'khfsm.sqlite'}"


@pytest.fixture
def postgres_empty_url(postgres_url: str) -> Iterator[str]:
    schema = f"khfsm_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(parse_url(postgres_url))
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = parse_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
