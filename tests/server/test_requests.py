"""Bad requests get an error ack that says what to fix; the connection and other lanes
carry on. Paths from the network are confined to the media root."""

from __future__ import annotations

import json

import pytest

from tests.server.conftest import RunningServer, connect, op, prepare_body, video_name

# Each case names its own CaptureID (71-75, 91-93), so one wrongly accepted request cannot
# leave a lane behind that turns the next cases' errors into misleading ones.
BAD_REQUESTS: list[tuple[str, str]] = [
    ("not json at all", "not JSON"),
    ("[1, 2, 3]", "expected a JSON object"),
    ('{"Task":"pushup","Op":"jump","CaptureID":71}', "Op 'jump' is not known"),
    ('{"Task":"pushup","Op":"start"}', "CaptureID is missing"),
    ('{"Task":"pushup","Op":"start","CaptureID":"abc"}', "CaptureID"),
    ('{"Task":"pushup","Op":"start","CaptureID":true}', "CaptureID"),
    ('{"Op":"start","CaptureID":74}', "Task is missing"),
    ('{"Task":"cartwheel","Op":"prepare","CaptureID":75}', "unknown Task 'cartwheel'"),
    ('{"Task":"pushup","Op":"start","CaptureID":91}', "not prepared; send prepare first"),
    ('{"Task":"pushup","Op":"stop","CaptureID":92}', "there is nothing to stop"),
    ('{"Task":"pushup","Op":"status","CaptureID":93}', "has no session; send prepare first"),
]


@pytest.mark.anyio
async def test_malformed_requests_get_error_acks_and_other_lanes_continue(
    server: RunningServer,
) -> None:
    async with connect(server) as tablet:
        await tablet.request(prepare_body(30, video_name("bystander"), 3.0, 10))
        await tablet.request(op("start", 30))
        for text, expected in BAD_REQUESTS:
            await tablet.send(text, code=3001)
            message = await tablet.recv()
            while not message.is_ack:  # the bystander lane's pushes may interleave
                message = await tablet.recv()
            assert message.code == 3001, message.raw
            assert message.body["result"] == "error", message.raw
            assert expected in message.body["error"], (text, message.body["error"])
            assert "Traceback" not in message.raw
        await tablet.ws.send(b"\x00binary")
        binary = await tablet.ack()
        assert "send text frames" in binary.body["error"]
        # wrong types and ranges in prepare: every problem is listed
        bad = prepare_body(31, video_name("bad"), "long", 0, Level=9)
        ack = await tablet.request(bad)
        error = ack.body["error"]
        assert ack.body["result"] == "error" and ack.body["CaptureID"] == 31
        assert "Duration" in error and "Fps must be > 0" in error and "Level must be <= 5" in error
        missing = {k: v for k, v in prepare_body(31, video_name("x"), 3, 10).items()
                   if k != "ModelPath"}  # fmt: skip
        ack = await tablet.request(missing)
        assert ack.body["error"].startswith("ModelPath is missing")
        # the connection is still open and the bystander lane ends normally
        _, terminal = await tablet.until_terminal(within=15)
        assert terminal.body["CaptureID"] == 30 and terminal.body["status"] == [-2]
        assert terminal.body["frames"] == 30


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("capture_id", "field", "value", "expected"),
    [
        (321, "ModelPath", "../../etc/passwd", "contains '..'"),
        (322, "CapturePath", "../../etc/passwd", "contains '..'"),
        (323, "CapturePath", "video/../../../etc/passwd", "contains '..'"),
        (324, "CapturePath", "/etc/passwd", "outside the media root"),
        (325, "ModelPath", "/tmp/evil.mp4", "outside the media root"),
        (326, "CapturePath", "ftp://cam/stream", "scheme 'ftp' is not allowed"),
        (327, "CapturePath", "file:///etc/passwd", "outside the media root"),
        (328, "CapturePath", "missing.mp4", "does not exist"),
    ],
)
async def test_paths_outside_the_media_root_are_refused(
    server: RunningServer, capture_id: int, field: str, value: str, expected: str
) -> None:
    body = prepare_body(capture_id, video_name("trav"), 3, 10)  # its own lane per case
    body[field] = value
    async with connect(server) as tablet:
        ack = await tablet.request(body)
    assert ack.body["result"] == "error"
    assert expected in ack.body["error"], ack.body["error"]


@pytest.mark.anyio
async def test_face_paths_are_confined_too(server: RunningServer) -> None:
    body = {"Task": "FaceDetection", "Op": "prepare", "CaptureID": 33,
            "CapturePath": "photo.jpg", "ModelPath": "../../etc/passwd"}  # fmt: skip
    async with connect(server) as tablet:
        ack = await tablet.request(body, code=1001)
        assert ack.code == 1001
        assert "contains '..'" in ack.body["error"]
        body["ModelPath"] = "nobody.npy"
        ack = await tablet.request(body)
        assert "does not exist" in ack.body["error"]


@pytest.mark.anyio
async def test_existing_video_is_never_overwritten(server: RunningServer) -> None:
    existing = server.media / "video" / "evidence.mp4"
    existing.parent.mkdir(parents=True, exist_ok=True)
    existing.write_bytes(b"old evidence")
    async with connect(server) as tablet:
        ack = await tablet.request(prepare_body(34, "video/evidence.mp4", 3, 10))
    assert "already exists" in ack.body["error"]
    assert existing.read_bytes() == b"old evidence"


def test_ack_and_push_wire_format() -> None:
    from khfsm.registry import get_task
    from khfsm.server import protocol

    incoming = protocol.split_frame('2001  {"Task":"pushup","Op":"stop","CaptureID":2}')
    assert incoming.framing == protocol.Framing(2001, "  ")
    body = protocol.ack("stop", "pushup", 2)
    assert protocol.encode_ack(body, incoming.framing) == (
        '2001  {"CaptureID":2,"Task":"pushup","error":"","op":"stop","result":"ok"}'
    )
    push = protocol.push([311], 3, 2, (10.2, 11.4), "", capture_id=2, task="pushup", session="s")
    push_code = get_task("pushup").push_code
    assert protocol.encode_push(push, protocol.Framing(2001, " "), push_code) == (
        '2222 {"status": [311], "total": 3, "count": 2, "time": [10.2, 11.4], "msg": "", '
        '"CaptureID": 2, "Task": "pushup", "session": "s"}'
    )
    assert json.loads(protocol.encode_push(push, protocol.Framing(), push_code)) == push
