"""Fixtures shared by every test package: where the real clips are, which PostgreSQL to use.

- Real clips: $KHFSM_TEST_VIDEOS, else ../shared/data/videos beside the repository. Tests that
  need them skip with a message saying so when the folder is absent (never silently).
- PostgreSQL: $KHFSM_TEST_POSTGRES_URL (.ci/run sets it). When it is unset or unreachable the
  PostgreSQL tests skip locally but FAIL under CI (CI=true), so a broken database can never
  pass as a green run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message: str) -> None:
    """A component the project's own setup installs is missing: skip locally, fail in CI."""
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
        pytest.skip(
            "real exercise clips not found: set KHFSM_TEST_VIDEOS or place them in "
            "../shared/data/videos beside the repository"
        )
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
