"""The exercise registry: every installed rules version is selectable by name."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from khfsm.registry import (
    GROUP,
    UnknownTask,
    get_exercise,
    get_task,
    installed_tasks,
    installed_versions,
    version_order,
)


def test_versions_sort_by_release_number_not_text() -> None:
    versions = ["pushup-10", "pushup-2", "pushup-1"]
    assert sorted(versions, key=version_order) == ["pushup-1", "pushup-2", "pushup-10"]


def test_new_sessions_get_the_newest_version_and_replay_gets_the_named_one() -> None:
    for task, versions in installed_versions().items():
        newest = max(versions, key=version_order)
        assert get_exercise(task).rules_version == newest
        for version, exercise in versions.items():
            assert get_exercise(task, version) is exercise


def test_a_version_that_is_not_installed_is_named_in_the_error() -> None:
    with pytest.raises(UnknownTask, match=r"pushup rules 'pushup-0' are not installed"):
        get_exercise("pushup", "pushup-0")
    with pytest.raises(UnknownTask, match=r"unknown Task 'curl'"):
        get_exercise("curl")


PLUGINS = """
from dataclasses import dataclass, field

@dataclass(frozen=True)
class Plugin:
    task: str
    rules_version: str
    code_digit: int
    push_code: int
    faults: dict = field(default_factory=dict)

    def initial_state(self, config):
        return None

    def step(self, config, state, frame, pose):
        return state, ()

    def finish(self, config, state, frame):
        return ()

GOOD = Plugin("lunge", "lunge-1", 8, 8888, {381: "knee not down"})
SAME_PUSH_CODE = Plugin("curl", "curl-1", 9, 2222)
SAME_DIGIT = Plugin("plank", "plank-1", 1, 9191)
MISNUMBERED = Plugin("burpee", "burpee-1", 7, 7777, {311: "not low enough"})
NOT_A_TASK = object()
# Named to sort before "pushup": a plug-in never displaces a task khfsm itself ships.
AARDVARK = Plugin("aardvark", "aardvark-1", 5, 2222)
"""


@pytest.fixture
def plugins(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    """A distribution with six entry points in the group, found on sys.path; the log."""
    (tmp_path / "site_plugins.py").write_text(PLUGINS)
    dist_info = tmp_path / "site_plugins-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: site-plugins\nVersion: 1.0\n")
    names = ("GOOD", "SAME_PUSH_CODE", "SAME_DIGIT", "MISNUMBERED", "NOT_A_TASK", "AARDVARK")
    (dist_info / "entry_points.txt").write_text(
        f"[{GROUP}]\n" + "".join(f"{name.lower()} = site_plugins:{name}\n" for name in names)
    )
    saved = list(sys.path)
    sys.path.insert(0, str(tmp_path))
    installed_tasks.cache_clear()
    try:
        with caplog.at_level(logging.ERROR, logger="khfsm.registry"):
            installed_tasks()
        yield caplog.text
    finally:
        sys.path[:] = saved
        sys.modules.pop("site_plugins", None)
        installed_tasks.cache_clear()


def test_a_plugin_brings_its_own_codes_and_colliding_ones_are_refused(plugins: str) -> None:
    lunge = get_exercise("lunge")
    assert (lunge.code_digit, lunge.push_code, dict(lunge.faults)) == (
        8,
        8888,
        {381: "knee not down"},
    )
    assert get_exercise("pushup").push_code == 2222  # the built-in keeps its code
    for task in ("curl", "plank", "burpee", "aardvark"):
        with pytest.raises(UnknownTask):
            get_task(task)
    assert "push code 2222 is already pushup's" in plugins
    assert "code digit 1 (31Y) is already pushup's" in plugins
    assert "fault code 311 is not 37Y" in plugins
    assert "does not implement the Task interface" in plugins
