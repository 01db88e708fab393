"""The recorder contract on SQLite, and what only SQLite does."""

from __future__ import annotations

from pathlib import Path

import pytest

from khfsm.store import migrate
from khfsm.store.sql import open_recorder

from .recorder_contract import RecorderContract


class TestSQLiteRecorder(RecorderContract):
    @pytest.fixture
    def empty_url(self, sqlite_empty_url: str) -> str:
        return sqlite_empty_url


def test_sqlite_runs_in_wal_mode(sqlite_empty_url: str) -> None:
    recorder = open_recorder(sqlite_empty_url, upgrade=True)
    try:
        with recorder.engine.connect() as connection:
            assert connection.exec_driver_sql("pragma journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("pragma foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("pragma synchronous").scalar() == 1  # NORMAL
    finally:
        recorder.close()


def test_sqlite_creates_its_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'khfsm.sqlite'}"
    assert migrate.upgrade(url) == migrate.head()
    assert (tmp_path / "a" / "b" / "khfsm.sqlite").is_file()
