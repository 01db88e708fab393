"""The recorder contract on PostgreSQL (each test in a schema of its own)."""

from __future__ import annotations

import pytest

from khfsm.store import StoreUnavailable, open_recorder

from .recorder_contract import RecorderContract

pytestmark = pytest.mark.postgres


class TestPostgresRecorder(RecorderContract):
    @pytest.fixture
    def empty_url(self, postgres_empty_url: str) -> str:
        return postgres_empty_url


def test_plain_postgresql_urls_use_psycopg(postgres_empty_url: str) -> None:
    plain = postgres_empty_url.replace("postgresql+psycopg://", "postgresql://")
    recorder = open_recorder(plain, upgrade=True)
    try:
        assert recorder.engine.url.drivername == "postgresql+psycopg"
    finally:
        recorder.close()


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(StoreUnavailable) as caught:
        open_recorder("postgresql://khfsm:s3cret@127.0.0.1:9/khfsm")
    message = str(caught.value)
    assert "s3cret" not in message and "***" in message
    assert "cannot reach the event store" in message and "127.0.0.1" in message
