"""`khfsm tablet` against the real server: it names the session as soon as a push does, and
ends with one line saying how the test ended and where its evidence is."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from khfsm.cli.main import cli
from tests.server.conftest import RunningServer, video_name
from tests.server.test_camera_loss import cut_clip


def test_the_tablet_prints_the_session_and_a_result_line(
    server: RunningServer, videos: Path
) -> None:
    clip = server.media / "tablet.mp4"
    if not clip.exists():
        cut_clip(server.media / "clip.mp4", clip, 1.5)
    video = video_name("tablet-cli")
    args = ["tablet", server.ws_url, "--task", "pushup", "--capture", "51",
            "--camera", "tablet.mp4", "--video", video, "--duration", "30", "--fps", "10",
            "--timeout", "60"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    [named] = [line.strip() for line in lines if line.strip().startswith("session ")]
    session = named.split()[1]
    assert len(session) == 32
    assert lines[-1] == (
        "result: count 0 of 0 attempts, end -4 (video source lost: video file tablet.mp4 "
        f"ended after 1.5 s (15 of 300 frames)); session {session}; "
        f"video {video} (under the server's media root)"
    )
    assert (server.media / video).is_file()


def test_the_result_line_of_a_face_check_names_its_crop() -> None:
    from khfsm.cli.tablet import Plan, summary_line

    plan = Plan("ws://x", [], None, None, "FaceDetection", 3, False, 10.0, filename="crops/a.jpg")
    body = {"status": [1], "total": 0, "count": 0, "msg": "mismatch", "similarity": 0.2,
            "session": "f" * 32, "frames": 0}  # fmt: skip
    assert summary_line(body, plan) == (
        f"result: face check: mismatch (status 1); session {'f' * 32}; face crop crops/a.jpg"
    )
