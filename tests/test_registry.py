"""The exercise registry: every installed rules version is selectable by name."""

from __future__ import annotations

import pytest

from khfsm.registry import UnknownTask, get_exercise, installed_versions, version_order


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
