"""`khfsm serve` as a real process, for the tests that kill it (SIGKILL) or watch it exit.

The process runs with its own data directory (SQLite store, spool) unless a database URL is
given, on a free port, its log in a file the test can read.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.server.conftest import CLIP, free_port

STARTUP_S = 120.0  # loading the models on a busy 2-core machine


@dataclass
class ServedProcess:
    root: Path
    videos: Path
    database_url: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def media(self) -> Path:
        return self.root / "media"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{self.root / 'khfsm.sqlite'}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / f"serve-{self.starts}.log"

    def log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.root.glob("serve-*.log"))
        )

    def start(self, **env: str) -> float:
        """Start the server and wait until /healthz answers; the seconds that took."""
        if not self.media.exists():
            self.media.mkdir(parents=True)
            shutil.copyfile(self.videos / CLIP, self.media / "clip.mp4")
        self.starts += 1
        environment = {
            **os.environ,
            "KHFSM_DATA_DIR": str(self.root),
            "KHFSM_CAMERA_GRACE_S": "1.0",
            "KHFSM_MAX_WAIT_MS": "5",
            **env,
        }
        if self.database_url:
            environment["KHFSM_DATABASE_URL"] = self.database_url
        khfsm = Path(sys.executable).with_name("khfsm")
        began = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(khfsm), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        while time.monotonic() - began < STARTUP_S:
            if self.process.poll() is not None:
                raise AssertionError(f"khfsm serve exited at start:\n{self.log()}")
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2)
                return time.monotonic() - began
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"khfsm serve did not answer within {STARTUP_S:g} s:\n{self.log()}")

    def health(self) -> tuple[int, dict[str, Any]]:
        response = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=10)
        body: dict[str, Any] = response.json()
        return response.status_code, body

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut of the process."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def khfsm_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    khfsm = Path(sys.executable).with_name("khfsm")
    return subprocess.run(
        [str(khfsm), *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
