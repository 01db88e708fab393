"""One server per SQLite store (`khfsm.store.ownership`): its start ends every session stored
open, so a second server on the same file would end the first one's running sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

from khfsm.store import StoreError
from khfsm.store.ownership import claim_sqlite_store, lock_path, sqlite_file


def test_a_second_claim_of_a_sqlite_store_is_refused_until_the_first_lets_go(
    tmp_path: Path,
) -> None:
    database = tmp_path / "khfsm.sqlite"
    held = claim_sqlite_store(database)
    with pytest.raises(StoreError, match="another khfsm server uses the SQLite store") as refused:
        claim_sqlite_store(database)
    # The refusal says what to do instead.
    assert "its own data directory" in str(refused.value)
    assert "PostgreSQL" in str(refused.value)
    held.close()
    claim_sqlite_store(database).close()  # free again
    assert lock_path(database).name == "khfsm.sqlite.server-lock"


def test_a_store_whose_lock_cannot_be_created_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot lock the SQLite store"):
        claim_sqlite_store(tmp_path / "no such directory" / "khfsm.sqlite")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////var/lib/khfsm/khfsm.sqlite", Path("/var/lib/khfsm/khfsm.sqlite")),
        ("sqlite:///:memory:", None),
        ("sqlite://", None),
        ("postgresql+psycopg://khfsm@db/khfsm", None),
    ],
)
def test_only_a_sqlite_file_has_a_server_lock(url: str, expected: Path | None) -> None:
    assert sqlite_file(url) == expected
