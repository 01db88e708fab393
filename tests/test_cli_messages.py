"""What the command line says when a file is not what it should be: one plain line from
khfsm, no OpenCV or FFmpeg chatter around it (that comes back with -vv, for diagnosis)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

KHFSM = [sys.executable, "-c", "from khfsm.cli.main import cli; cli()"]


def khfsm(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    return subprocess.run(
        [*KHFSM, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def not_a_video(tmp_path: Path) -> Path:
    path = tmp_path / "notes.mp4"
    path.write_text("these are notes, not a video\n")
    return path


def test_pose_on_a_file_that_is_no_video_says_so_plainly(not_a_video: Path) -> None:
    done = khfsm("pose", str(not_a_video))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"Error: {not_a_video} is not a video: FFmpeg cannot read it. khfsm pose takes a "
        "video (e.g. .mp4) or an image (.bmp, .jpeg, .jpg, .png, .tif, .tiff, .webp)"
    ]


def test_opencv_and_ffmpeg_native_messages_stay_off_stderr(not_a_video: Path) -> None:
    quiet = khfsm("assess", str(not_a_video), "-e", "pushup")
    assert quiet.returncode == 1
    assert quiet.stderr.splitlines() == [
        f"Error: cannot open video {not_a_video}: not a video OpenCV can read"
    ]
    # With -vv the libraries speak again: what the quiet run kept off stderr is really theirs.
    loud = khfsm("-vv", "assess", str(not_a_video), "-e", "pushup")
    assert "moov atom not found" in loud.stderr


def test_alembic_speaks_only_at_debug(tmp_path: Path) -> None:
    verbose = khfsm("-v", "db", "upgrade", "--database-url", f"sqlite:///{tmp_path / 'a.db'}")
    assert verbose.returncode == 0, verbose.stderr
    assert "alembic" not in verbose.stderr
    debug = khfsm("-vv", "db", "upgrade", "--database-url", f"sqlite:///{tmp_path / 'b.db'}")
    assert "alembic" in debug.stderr
