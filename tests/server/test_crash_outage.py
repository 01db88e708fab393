"""SIGKILL of a real `khfsm serve` during a PostgreSQL outage, then a restart with the
database back: the events spooled during the outage reach the database, none lost, none
stored twice, and the sessions end with -7."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from sqlalchemy.engine import make_url

from khfsm.domain.events import SessionEnded, SourceFailed
from khfsm.store import migrate, open_recorder
from khfsm.store.spool import Spool
from tests.server.conftest import connect, op, prepare_body
from tests.server.served import ServedProcess, khfsm_cli
from tests.store.conftest import postgres_empty_url  # noqa: F401 - a fixture used below
from tests.store.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

CAPTURES = (4, 5)


@pytest.fixture
def proxied(postgres_empty_url: str) -> Iterator[tuple[str, str, TcpProxy]]:  # noqa: F811
    migrate.upgrade(postgres_empty_url)  # a PostgreSQL store is upgraded by its administrator
    url = make_url(postgres_empty_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    try:
        through = url.set(port=proxy.port).render_as_string(hide_password=False)
        yield postgres_empty_url, through, proxy
    finally:
        proxy.stop()


async def test_sigkill_during_a_database_outage_loses_no_spooled_event(
    tmp_path: Path, videos: Path, proxied: tuple[str, str, TcpProxy]
) -> None:
    direct, through_proxy, proxy = proxied
    served = ServedProcess(tmp_path, videos, database_url=through_proxy)
    served.start()
    try:
        async with connect(served) as tablet:  # type: ignore[arg-type]
            for capture in CAPTURES:
                video = f"video/outage_{capture}.mp4"
                ack = await tablet.request(prepare_body(capture, video, duration=60, fps=10))
                assert ack.body["result"] == "ok", ack.raw
                assert (await tablet.request(op("start", capture))).body["result"] == "ok"
            await anyio.sleep(2.0)
            proxy.stop()  # the database goes away
            with anyio.fail_after(40):
                while True:
                    await anyio.sleep(0.5)
                    status, health = await anyio.to_thread.run_sync(served.health)
                    if status == 503 and health["store"]["pending_events"] > 30:
                        break
            sessions = [lane["session"] for lane in health["lane_list"]]
            await anyio.to_thread.run_sync(served.kill)
    except BaseException:
        served.stop()
        raise

    spool = Spool(served.spool, "")
    spooled = {session_id: spool.read(session_id) for session_id in sessions}
    recorder = open_recorder(direct)
    try:
        before = {s: recorder.session(s) for s in sessions}
        for session_id, on_disk in spooled.items():
            row = before[session_id]
            in_database = row.events if row is not None else 0
            assert on_disk.next_seq > in_database  # without the spool these would be lost

        proxy.start()  # the database is back
        try:
            restarted_in = served.start()
        finally:
            served.stop()
        print(f"restart with the database back until /healthz answered: {restarted_in:.1f} s")

        for session_id, on_disk in spooled.items():
            rows = recorder.read_records(session_id)
            assert [r.record for r in rows[: on_disk.next_seq]] == on_disk.records  # each once
            events = recorder.events(session_id)
            tail = events[on_disk.next_seq :]
            # The crash input, then what it derives (a rep in progress judged, the end).
            assert [e.status for e in tail if isinstance(e, SourceFailed)] == [-7]
            assert isinstance(tail[-1], SessionEnded) and tail[-1].status == -7
            assert recorder.verify_chain(session_id).ok
            verified = khfsm_cli("verify", session_id, "--database-url", direct)
            assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        recorder.close()
    assert not list(served.spool.glob("*.jsonl"))
    print(*(line for line in served.log().splitlines() if "crash recovery:" in line), sep="\n")
