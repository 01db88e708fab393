"""A pytest plugin: under CI (`CI=true`), a run that skipped anything fails, listing what.

Locally a skip says what is missing and the run stays green; under CI the same skip would
hide a whole layer (no clips: no WebSocket end-to-end test at all), so the session's exit
status is set to "tests failed" and the skips are listed in the terminal summary. Allowed:

- tests marked `opt_in`: documented tests that need an extra CI does not install
  (tests/vision/test_convert.py needs the `convert` extra and two upstream packages);
- xfail: an expected failure (e.g. a real clip the rules are known to miss) is not a skip.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

OPT_IN = "opt_in"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


_skips: list[str] = []  # one pytest session per process: the skips CI must not accept


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{OPT_IN}: a documented opt-in test (needs an extra CI does not install); its skip "
        "is allowed under CI",
    )


def _unexpected_skip(report: pytest.TestReport | pytest.CollectReport) -> str | None:
    """'<test id>: <reason>' for a skip CI must not accept; None for anything else."""
    keywords = getattr(report, "keywords", {})  # a collection report has none
    if not report.skipped or hasattr(report, "wasxfail") or OPT_IN in keywords:
        return None
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return f"{report.nodeid}: {reason}"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if (skip := _unexpected_skip(report)) is not None:
        _skips.append(skip)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if (skip := _unexpected_skip(report)) is not None:
        _skips.append(skip)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if in_ci() and _skips and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not (in_ci() and _skips):
        return
    terminalreporter.section("skipped under CI (a CI run must not skip these)", red=True)
    for skip in _skips:
        terminalreporter.line(skip, red=True)
