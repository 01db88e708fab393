"""`khfsm assess` errors: clear messages, never a traceback."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from khfsm.cli.main import cli


def _assess(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["assess", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_missing_video(tmp_path: Path) -> None:
    code, output = _assess(str(tmp_path / "nope.mp4"), "--exercise", "pushup")
    assert code != 0 and "video not found" in output


def test_unreadable_video(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"this is not a video")
    code, output = _assess(
        str(fake), "--exercise", "pushup", "--database-url", f"sqlite:///{tmp_path / 'k.sqlite'}"
    )
    assert code != 0 and "cannot open video" in output


def test_unknown_exercise(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"x")
    code, output = _assess(str(fake), "--exercise", "burpee")
    assert code != 0 and "unknown exercise 'burpee'" in output
    assert "khfsm assess runs exercises only: armhang, pullup, pushup, situp, squat" in output


def test_the_face_check_is_not_an_exercise(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"x")
    code, output = _assess(str(fake), "-e", "FaceDetection")
    assert code != 0
    assert "FaceDetection is not an exercise" in output and "khfsm face verify" in output
    assert "khfsm assess runs exercises only: armhang, pullup, pushup, situp, squat" in output
    assert "knows: FaceDetection" not in output  # not offered as if it could be assessed


def test_level_out_of_range(tmp_path: Path) -> None:
    code, output = _assess(str(tmp_path / "x.mp4"), "--exercise", "pushup", "--level", "7")
    assert code != 0 and "--level" in output
