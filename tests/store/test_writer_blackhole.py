"""A database behind a network that drops packets is noticed within the store's timeouts.

PostgreSQL behind a proxy that forwards nothing (no reset, no refusal): the writer's call
into the database would wait for TCP to give up, many minutes. With the connect and
statement timeouts it is reported as an outage within about their sum, the events are
kept and retried, and once the network is back they are all stored, exactly once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

import anyio
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from khfsm.store import StoreUnavailable, migrate, open_recorder
from khfsm.store.engine import StoreTimeouts
from khfsm.store.writer import EventWriter

from .reference_exercise import nose_track, record_session
from .tcp_proxy import TcpProxy

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

TIMEOUTS = StoreTimeouts(connect_s=2, statement_s=2)  # generous on a busy test machine


@pytest.fixture
def proxied(postgres_empty_url: str) -> Iterator[tuple[str, TcpProxy]]:
    migrate.upgrade(postgres_empty_url)
    url = make_url(postgres_empty_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    try:
        yield url.set(port=proxy.port).render_as_string(hide_password=False), proxy
    finally:
        proxy.stop()


@pytest.mark.timeout(60)  # without a write timeout the writer waits on TCP for many minutes
async def test_a_blackholed_database_is_an_outage_noticed_within_the_timeouts(
    proxied: tuple[str, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    url, proxy = proxied
    recorder = open_recorder(url, timeouts=TIMEOUTS)
    events, session_id = record_session(nose_track(3)), uuid.uuid4().hex
    half = len(events) // 2
    writer = EventWriter(
        recorder,
        max_delay_ms=20,
        flush_timeout_s=2 * TIMEOUTS.answer_s + 2,
        write_timeout_s=TIMEOUTS.answer_s,
        backoff_initial_s=0.05,
        backoff_max_s=0.5,
    )
    caplog.set_level(logging.WARNING, logger="khfsm.store.writer")
    try:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                group.start_soon(writer.run)
                writer.submit(session_id, events[:half])
                await writer.flush(session_id)  # the pool now holds a live connection

                proxy.blackhole()
                cut = time.time()
                writer.submit(session_id, events[half:])
                with pytest.raises(StoreUnavailable, match="kept in memory and retried"):
                    await writer.flush(session_id)
                noticed = [r for r in caplog.records if "keeping" in r.getMessage()]
                assert len(noticed) == 1  # one line when the outage starts
                # The pooled connection hangs: the writer's own deadline noticed it (later
                # retries may fail sooner, on the connect timeout of a new connection).
                assert f"did not answer within {TIMEOUTS.answer_s:g} s" in noticed[0].getMessage()
                print(f"blackhole noticed after {noticed[0].created - cut:.1f} s")

                proxy.restore()
                back = time.monotonic()
                await writer.flush(session_id)
                print(
                    f"all events stored {time.monotonic() - back:.1f} s after the network came back"
                )
                group.cancel_scope.cancel()
        assert recorder.events(session_id) == events  # each once, in order
        assert recorder.verify_chain(session_id).ok
    finally:
        recorder.close()


async def test_opening_a_blackholed_database_fails_within_the_connect_timeout(
    proxied: tuple[str, TcpProxy],
) -> None:
    url, proxy = proxied
    proxy.blackhole()
    with anyio.fail_after(30), pytest.raises(StoreUnavailable, match="cannot reach"):
        await anyio.to_thread.run_sync(lambda: open_recorder(url, timeouts=TIMEOUTS))


def test_the_server_store_cuts_long_statements_and_keeps_the_urls_options(
    postgres_empty_url: str,
) -> None:
    migrate.upgrade(postgres_empty_url)
    recorder = open_recorder(postgres_empty_url, timeouts=StoreTimeouts(statement_s=1.5))
    try:
        with recorder.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "1500ms"
            # The URL's own options (here the test's schema) are kept beside the timeout.
            search_path = str(connection.exec_driver_sql("SHOW search_path").scalar())
            assert search_path.startswith("khfsm_test_")
            with pytest.raises(OperationalError, match="statement timeout"):
                connection.exec_driver_sql("SELECT pg_sleep(5)")
    finally:
        recorder.close()
