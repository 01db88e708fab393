"""`khfsm replay`, `verify` and `sessions` take a unique prefix of a session id, as git takes
a commit's, and say so when a prefix is ambiguous or names no session; on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from khfsm.cli.main import cli
from khfsm.registry import installed_tasks
from khfsm.store import migrate, open_recorder

from .reference_exercise import REFERENCE, nose_track, record_session

FIRST = "aa11" + "0" * 28
SECOND = "aa22" + "0" * 28
THIRD = "bb33" + "0" * 28
UNDERSCORE = "c_d4" + "0" * 28  # LIKE's wildcards in a prefix are plain characters
LOOKALIKE = "cxd5" + "0" * 28


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    empty = request.getfixturevalue(f"{request.param}_empty_url")
    migrate.upgrade(empty)
    recorder = open_recorder(empty)
    try:
        for session_id in (FIRST, SECOND, THIRD, UNDERSCORE, LOOKALIKE):
            recorder.append(session_id, 0, record_session(nose_track(2)))
    finally:
        recorder.close()
    # The reference rules stand in for an installed exercise, so that replay can run.
    monkeypatch.setitem(installed_tasks(), REFERENCE.task, {REFERENCE.rules_version: REFERENCE})
    yield empty


def khfsm(*args: str, url: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--database-url", url])


@pytest.mark.parametrize("command", ["replay", "verify"])
def test_a_unique_prefix_names_its_session(command: str, url: str) -> None:
    result = khfsm(command, "bb", "--json", url=url)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["session_id"] == THIRD
    result = khfsm(command, "c_", "--json", url=url)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["session_id"] == UNDERSCORE
    result = khfsm(command, FIRST, url=url)  # the whole id, of course
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", ["replay", "verify"])
def test_an_ambiguous_prefix_is_refused_naming_the_candidates(command: str, url: str) -> None:
    result = khfsm(command, "aa", url=url)
    assert result.exit_code == 2
    assert "session id prefix 'aa' is ambiguous: 2 sessions begin with it" in result.output
    assert FIRST in result.output and SECOND in result.output
    assert "type more characters" in result.output


@pytest.mark.parametrize("command", ["replay", "verify"])
@pytest.mark.parametrize("prefix", ["dd", "BB", "aa3"])
def test_an_unknown_prefix_is_refused(command: str, prefix: str, url: str) -> None:
    result = khfsm(command, prefix, url=url)
    assert result.exit_code == 2
    assert f"no session {prefix} is stored, nor one whose id starts with it" in result.output
    assert "Traceback" not in result.output


def test_sessions_lists_the_sessions_a_prefix_names(url: str) -> None:
    result = khfsm("sessions", "aa", "--json", url=url)
    assert result.exit_code == 0, result.output
    assert sorted(row["session_id"] for row in json.loads(result.output)) == [FIRST, SECOND]
    result = khfsm("sessions", "bb3", "--json", url=url)
    assert [row["session_id"] for row in json.loads(result.output)] == [THIRD]
    result = khfsm("sessions", "c_", url=url)
    assert result.exit_code == 0 and UNDERSCORE in result.output
    assert LOOKALIKE not in result.output


def test_sessions_says_when_a_prefix_names_none(url: str) -> None:
    result = khfsm("sessions", "dd", url=url)
    assert result.exit_code == 2
    assert "no session dd is stored, nor one whose id starts with it" in result.output
    result = khfsm("sessions", "aa", "--task", "pushup", url=url)
    assert result.exit_code == 2 and "either SESSION or filters" in result.output
