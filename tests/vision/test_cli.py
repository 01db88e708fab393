"""`khfsm pose` and `khfsm face` end to end through click (same process, real models)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from khfsm.cli.main import cli
from khfsm.vision.pose import PoseTracker, load_pose_models

PathOf = Callable[[str], Path]


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_pose_json_prints_33_landmarks_in_pixels(parity_path: PathOf) -> None:
    path = parity_path("astronaut.png")
    code, out, _ = _run("pose", str(path), "--json")
    assert code == 0, out
    rows = json.loads(out)["landmarks"]
    assert len(rows) == 33 and all(len(row) == 5 for row in rows)
    expected = PoseTracker(load_pose_models()).process(cv2.imread(str(path)))
    assert expected is not None
    np.testing.assert_allclose(np.array(rows)[:, :2], expected.landmarks[:, :2], atol=1e-3)


def test_pose_json_without_person_prints_null(parity_path: PathOf) -> None:
    code, out, _ = _run("pose", str(parity_path("coffee.png")), "--json")
    assert code == 0 and json.loads(out) == {"landmarks": None}


def test_pose_draw_writes_image(parity_path: PathOf, tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    code, out, _ = _run("pose", str(parity_path("grace_hopper.jpg")), "--draw", str(target))
    assert code == 0, out
    drawn = cv2.imread(str(target))
    assert drawn is not None and drawn.shape == (600, 512, 3)


@pytest.mark.parametrize("content", [b"", b"not an image at all"])
@pytest.mark.parametrize("suffix", [".png", ".mp4", ".dat"])
def test_pose_unreadable_input_is_a_clear_error(
    content: bytes, suffix: str, tmp_path: Path
) -> None:
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(content)
    result = CliRunner().invoke(cli, ["pose", str(path)])
    assert result.exit_code == 1
    assert "Error:" in result.output and str(path) in result.output
    assert result.exc_info is not None and result.exc_info[0] is SystemExit  # no traceback


def test_pose_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    code, out, err = _run("pose", str(tmp_path / "nope.jpg"))
    assert code == 1 and "no such file" in out + err


def test_face_enroll_then_verify(parity_path: PathOf, tmp_path: Path) -> None:
    person = tmp_path / "person.npy"
    code, out, _ = _run("face", "enroll", str(parity_path("astronaut.png")), "-o", str(person))
    assert code == 0, out
    vector = np.load(person)
    assert vector.shape == (192,) and vector.dtype == np.float32

    code, out, _ = _run("face", "verify", str(parity_path("astronaut.png")), str(person), "--json")
    assert code == 0 and json.loads(out)["accepted"] is True

    code, out, _ = _run("face", "verify", str(parity_path("grace_hopper.jpg")), str(person))
    assert code == 1 and out.startswith("rejected: similarity")


def test_face_enroll_rejects_group_photo(parity_path: PathOf, tmp_path: Path) -> None:
    code, out, err = _run(
        "face", "enroll", str(parity_path("sample4.jpg")), "-o", str(tmp_path / "x.npy")
    )
    assert code == 1 and "2 faces found" in out + err
    assert not (tmp_path / "x.npy").exists()
