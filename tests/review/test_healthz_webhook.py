"""`/healthz` of a real server (uvicorn) with a webhook configured shows its counters and last
error, with the webhook's password masked."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from khfsm.settings import Settings
from tests.review.receiver import free_port


def test_healthz_shows_the_webhook(tmp_path: Path) -> None:
    from khfsm.server.app import create_app

    hook = f"http://results:s3cret@127.0.0.1:{free_port()}/in"
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", port=free_port(), webhook_url=hook)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.port, log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                pytest.fail("the server did not start within 60 s")
            time.sleep(0.05)
        body = httpx.get(f"http://127.0.0.1:{settings.port}/healthz", timeout=10).json()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    webhook = body["webhook"]
    assert webhook["url"] == hook.replace("s3cret", "***")
    assert (webhook["delivered"], webhook["given_up"], webhook["queued"]) == (0, 0, 0)
    assert webhook["last_error"] is None
