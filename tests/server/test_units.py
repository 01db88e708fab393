"""Pieces of the server that need no running server: paths, redaction, the outbox."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from khfsm.server.outbox import Outbox
from khfsm.server.paths import MediaRoot, PathRefused, SourceKind, parse_source, redact

SCHEMES = ["rtsp", "http", "https", "file", "device"]


def test_redact_masks_passwords() -> None:
    assert redact("rtsp://admin:123456@192.168.1.102:554/mpeg4cif") == (
        "rtsp://admin:***@192.168.1.102:554/mpeg4cif"
    )
    assert redact("http://cam/snap?user=a&password=x1") == "http://cam/snap?user=a&password=***"
    assert redact("rtsp://cam/stream") == "rtsp://cam/stream"
    assert redact("/a/file.mp4") == "/a/file.mp4"


def test_media_root_maps_tablet_paths(tmp_path: Path) -> None:
    media = MediaRoot.at(tmp_path / "tnkhxt")
    inside = f"{media.root}/files/video/x.mp4"
    assert media.resolve(inside, "ModelPath") == media.root / "files/video/x.mp4"
    assert media.resolve("files/video/x.mp4", "ModelPath") == media.root / "files/video/x.mp4"
    for bad in ("../x", "a/../../x", "/usr/local/tnkhxt/files/video/x.mp4", "", f"{inside}\0"):
        with pytest.raises(PathRefused):
            media.resolve(bad, "ModelPath")


def test_camera_sources(tmp_path: Path) -> None:
    media = MediaRoot.at(tmp_path)
    rtsp = parse_source("rtsp://admin:pw@10.0.0.1/x", media, SCHEMES)
    assert rtsp.kind is SourceKind.URL and rtsp.display == "rtsp://admin:***@10.0.0.1/x"
    assert parse_source(0, media, SCHEMES).kind is SourceKind.DEVICE
    assert parse_source("device:1", media, SCHEMES).target == 1
    assert parse_source("clip.mp4", media, SCHEMES).target == str(tmp_path / "clip.mp4")
    with pytest.raises(PathRefused, match="not allowed"):
        parse_source("rtsp://x/y", media, ["http"])
    with pytest.raises(PathRefused, match="devices are not allowed"):
        parse_source("0", media, ["rtsp"])


@pytest.mark.anyio
async def test_outbox_drops_oldest_progress_but_never_terminal_or_acks() -> None:
    outbox = Outbox(max_progress=3)
    outbox.put("ack", droppable=False)
    for i in range(10):
        outbox.put(f"progress {i}", droppable=True)
    outbox.put("terminal", droppable=False)
    received = [await outbox.get() for _ in range(len(outbox))]
    assert received == ["ack", "progress 7", "progress 8", "progress 9", "terminal"]
    assert outbox.dropped == 7
    outbox.close()
    with pytest.raises(anyio.EndOfStream):
        await outbox.get()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_command_line_tablet_knows_a_final_push_of_any_task_by_its_fields() -> None:
    from khfsm.cli.tablet import parse_message

    envelope = '"CaptureID": 2, "Task": "%s", "session": "s"'
    rep = parse_message('2222 {"status": [0], "total": 1, "count": 1, "time": [1.0, 2.0], '
                        '"msg": "", ' + envelope % "pushup" + "}")  # fmt: skip
    status = parse_message('{"status": [], "total": 0, "count": 0, "time": [0.0, 1.5], '
                           '"msg": "running", ' + envelope % "pushup" +
                           ', "state": "running", "frames": 15}')  # fmt: skip
    ended = parse_message('{"status": [-2], "total": 1, "count": 1, "time": [0.0, 0.0], '
                          '"msg": "time is up", ' + envelope % "pushup" +
                          ', "frames": 80}')  # fmt: skip
    face = parse_message('1111 {"status": [1], "total": 1, "count": 0, "time": [0.0, 0.0], '
                         '"msg": "no match", ' + envelope % "FaceDetection" +
                         ', "frames": 0, "similarity": 0.1, "threshold": 0.55}')  # fmt: skip
    assert [m.terminal for m in (rep, status, ended, face)] == [False, False, True, True]
