"""The result webhook: delivered by a real site to a real local receiver when the session
ends; retried with backoff while the receiver is down or failing; never blocking."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from khfsm.domain.events import SessionEnded, SessionStarted
from khfsm.review.webhook import ResultSink, ResultWebhook, WebhookPolicy
from khfsm.store import StoreError, open_recorder
from khfsm.store.writer import EventWriter
from tests.domain.golden import prepared
from tests.review.conftest import PUBLIC_URL, Assessed
from tests.review.receiver import Receiver, free_port


async def until(condition: Callable[[], bool], within_s: float = 30) -> None:
    """Poll `condition` (the receiver is another thread); fail after `within_s`, a hang guard
    and not a speed check."""
    with anyio.fail_after(within_s):
        for _ in itertools.count():
            if condition():
                return
            await anyio.sleep(0.02)


FAST = WebhookPolicy(timeout_s=2.0, max_attempts=50, backoff_initial_s=0.05, backoff_max_s=0.2)


def test_the_site_posted_the_result_when_the_session_ended(assessed: Assessed) -> None:
    (body,) = assessed.webhook_bodies
    final = assessed.final
    assert body["event"] == "session.ended" and body["session_id"] == assessed.session_id
    assert (body["count"], body["total"], body["end_status"]) == (
        final.count,
        final.total,
        final.status[0],
    )
    assert (body["task"], body["level"], body["reviewed"]) == ("pushup", 5, False)
    assert body["evidence"] == f"{PUBLIC_URL}/ui/sessions/{assessed.session_id}"
    status = assessed.webhook_status
    assert (status["delivered"], status["failed_attempts"], status["given_up"]) == (1, 0, 0)
    assert status["last_error"] is None and status["queued"] == 0


@pytest.mark.anyio
async def test_results_are_retried_while_the_receiver_is_down_then_delivered() -> None:
    receiver = Receiver(free_port())  # nothing listens on its port yet
    webhook = ResultWebhook(receiver.url, FAST)
    async with anyio.create_task_group() as group:
        group.start_soon(webhook.run)
        assert webhook.notify({"session_id": "s1", "count": 3})
        assert webhook.notify({"session_id": "s2", "count": 5})
        await until(lambda: webhook.failed_attempts >= 3)
        status = webhook.status()
        assert status["delivered"] == 0 and status["retrying"] and status["queued"] == 1
        assert "ConnectError" in status["last_error"]

        receiver.status = 503  # up, but failing
        receiver.start()
        try:
            await until(lambda: receiver.attempts >= 2)
            assert webhook.status()["last_error"] == "HTTP 503 Service Unavailable"
            receiver.status = 200
            with anyio.fail_after(30):
                await webhook.wait_idle()
        finally:
            receiver.stop()
        group.cancel_scope.cancel()
    assert [body["session_id"] for body in receiver.bodies] == ["s1", "s2"]  # in order, once
    status = webhook.status()
    assert status["delivered"] == 2 and status["given_up"] == 0 and not status["retrying"]
    assert status["failed_attempts"] >= 5


@pytest.mark.anyio
async def test_a_refusal_is_given_up_at_once_and_a_full_queue_drops_without_blocking() -> None:
    receiver = Receiver().start()
    receiver.status = 400
    webhook = ResultWebhook(receiver.url, WebhookPolicy(max_queue=2, backoff_initial_s=0.05))
    try:
        # Nobody delivers yet: the queue fills, the third result is dropped at once.
        assert webhook.notify({"session_id": "a"}) and webhook.notify({"session_id": "b"})
        assert not webhook.notify({"session_id": "c"})
        assert webhook.status()["dropped"] == 1 and webhook.status()["queued"] == 2
        async with anyio.create_task_group() as group:
            group.start_soon(webhook.run)
            with anyio.fail_after(30):
                await webhook.wait_idle()
            group.cancel_scope.cancel()
    finally:
        receiver.stop()
    status = webhook.status()
    assert receiver.attempts == 2  # one each: a 400 is not retried
    assert (status["given_up"], status["delivered"]) == (2, 0)
    assert status["last_error"] == "HTTP 400 Bad Request"


@pytest.mark.anyio
async def test_only_a_durably_stored_end_is_posted(tmp_path: Path) -> None:
    recorder = open_recorder(f"sqlite:///{tmp_path / 'khfsm.sqlite'}", upgrade=True)
    writer = EventWriter(recorder, flush_timeout_s=10)
    receiver = Receiver().start()
    webhook = ResultWebhook(receiver.url, FAST)
    sink = ResultSink(writer, webhook, public_url=PUBLIC_URL)
    ended = SessionEnded(status=-1, message="stopped by the operator", frames=0, count=0, total=0)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(writer.run)
            group.start_soon(webhook.run)
            # The store refuses a stream that does not begin with SessionPrepared.
            sink.submit("refused", [SessionStarted(), ended])
            with pytest.raises(StoreError):
                await sink.flush("refused")
            sink.submit("stored", [prepared(), SessionStarted(), ended])
            await sink.flush("stored")
            with anyio.fail_after(30):
                await webhook.wait_idle()
            group.cancel_scope.cancel()
    finally:
        receiver.stop()
        recorder.close()
    (body,) = receiver.bodies
    assert body["session_id"] == "stored" and body["end_status"] == -1
    assert body["capture_id"] == 2 and body["evidence"] == f"{PUBLIC_URL}/ui/sessions/stored"
