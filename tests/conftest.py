"""Fixtures shared by every test package: where the shared data is, which PostgreSQL to use,
and the one way a test says that something it needs is missing.

- Real clips: $KHFSM_TEST_VIDEOS, else ../shared/data/videos beside the repository.
- PostgreSQL: $KHFSM_TEST_POSTGRES_URL (scripts/test.sh sets it).
- Anything a test needs and cannot find (the shared data, PostgreSQL, Chromium, GStreamer's
  RTSP server, an exercise) goes through `unavailable()`: a skip with the reason locally, a
  failure under CI (`CI=true`, which .ci/run exports), so a missing layer can never pass as a
  green run.
- Under CI any other skip fails the run too, listed at the end, unless the test is marked
  `opt_in` (tests/ci_skips.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

# Under CI, a skip that does not go through `unavailable()` fails the run (tests/ci_skips.py).
pytest_plugins = ["tests.ci_skips"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def unavailable(message: str) -> None:
    """A component the project's own setup installs is missing: skip locally, fail in CI."""
    from tests.ci_skips import in_ci  # loaded by pytest_plugins above, not before it

    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def videos_dir() -> Path | None:
    configured = os.environ.get("KHFSM_TEST_VIDEOS")
    path = Path(configured) if configured else REPO_ROOT.parent / "shared" / "data" / "videos"
    return path if (path / "labels.json").is_file() else None


@pytest.fixture(scope="session")
def videos() -> Path:
    path = videos_dir()
    if path is None:
        unavailable(
            "real exercise clips not found: set KHFSM_TEST_VIDEOS or place them in "
            "../shared/data/videos beside the repository"
        )
        raise AssertionError("unreachable")
    return path


@pytest.fixture(scope="session")
def video_labels(videos: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((videos / "labels.json").read_text())
    return {entry["file"]: entry for entry in data["videos"]}


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("KHFSM_TEST_POSTGRES_URL")
    if not url:
        unavailable("PostgreSQL tests need KHFSM_TEST_POSTGRES_URL (.ci/run sets it)")
        raise AssertionError("unreachable")
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("select 1"))
        engine.dispose()
    except Exception as error:  # any driver error means: no usable server
        unavailable(f"PostgreSQL at {url} is unreachable: {error}")
    return url
