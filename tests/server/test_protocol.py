"""The tablet protocol's parsing and encoding as functions (no server): framing codes, the
words of every refusal, the wire format of acks and pushes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from khfsm.server.kinds import EXERCISE_LANE, FACE_CHECK_LANE
from khfsm.server.lanes import LaneKind
from khfsm.server.protocol import (
    ExercisePrepare,
    FacePrepare,
    FaceStart,
    FrameError,
    Framing,
    Operation,
    Request,
    RequestError,
    ack,
    encode_ack,
    encode_push,
    parse_request,
    push,
    split_frame,
)

# The request models each task's kind of lane takes (what the server's lane registry gives
# `parse_request`): an exercise and the face check, as installed.
KINDS = {"pushup": EXERCISE_LANE, "situp": EXERCISE_LANE, "FaceDetection": FACE_CHECK_LANE}


def requests_of(task: str) -> LaneKind:
    try:
        return KINDS[task]
    except KeyError:
        raise RequestError(f"unknown Task {task!r}; known: pushup") from None


def parse(text: str) -> Request:
    return parse_request(split_frame(text), requests_of)


PREPARE: dict[str, Any] = {
    "Task": "pushup",
    "Op": "prepare",
    "CaptureID": 2,
    "CapturePath": "rtsp://cam/lane",
    "ModelPath": "video/x.mp4",
    "Duration": 122,
    "Fps": 20,
    "Level": 5,
}


@pytest.mark.parametrize(
    ("text", "code", "separator"),
    [
        ('{"Op":"stop"}', None, " "),
        ('2001 {"Op":"stop"}', 2001, " "),
        ('2001  {"Op":"stop"}', 2001, "  "),
        ('2001{"Op":"stop"}', 2001, " "),  # no separator: answered with one blank
        ('  7\t{"Op":"stop"}', 7, "\t"),
        ('123456789 {"Op":"stop"}', 123456789, " "),
    ],
)
def test_split_frame_reads_the_leading_code(text: str, code: int | None, separator: str) -> None:
    incoming = split_frame(text)
    assert incoming.framing == Framing(code, separator)
    assert incoming.data == {"Op": "stop"}


def test_a_number_alone_is_json_not_a_code() -> None:
    with pytest.raises(FrameError, match="expected a JSON object, got int") as refused:
        split_frame("2001")
    assert refused.value.framing == Framing()
    with pytest.raises(FrameError, match=r"not JSON \(Extra data\)"):
        split_frame("1234567890 {}")  # ten digits: not a code, so not JSON either


def test_not_json_is_refused_with_an_example_and_the_framing_kept() -> None:
    with pytest.raises(FrameError) as refused:
        split_frame("2001 {nope")
    assert refused.value.framing == Framing(2001, " ")
    assert str(refused.value).startswith("the frame is not JSON (")
    assert '{"Task":"pushup","Op":"status","CaptureID":2}' in str(refused.value)
    with pytest.raises(FrameError, match="expected a JSON object, got list"):
        split_frame("[1]")


def test_framing_wraps_only_when_the_client_used_codes() -> None:
    assert Framing().wrap("{}") == "{}"
    assert Framing().wrap("{}", 2222) == "{}"
    assert Framing(2001, "  ").wrap("{}") == "2001  {}"
    assert Framing(2001, "  ").wrap("{}", 2222) == "2222  {}"


def test_echo_gives_what_was_sent_for_an_error_ack() -> None:
    assert split_frame('{"CaptureID":3,"Task":"x","Op":"y"}').echo() == (3, "x", "y")
    assert split_frame("{}").echo() == (None, None, None)


def test_parse_request_picks_the_model_of_the_op() -> None:
    prepare = parse(json.dumps(PREPARE))
    assert isinstance(prepare, ExercisePrepare)
    assert (prepare.Duration, prepare.Fps, prepare.Level) == (122.0, 20.0, 5)
    face = {**PREPARE, "Task": "FaceDetection"}
    assert isinstance(parse(json.dumps(face)), FacePrepare)
    start = {"Task": "FaceDetection", "Op": "start", "CaptureID": 2}
    face_start = parse(json.dumps(start))
    assert isinstance(face_start, FaceStart) and face_start.Duration == 10.0
    plain = parse('{"Task":" pushup ","Op":"start","CaptureID":2}')
    assert type(plain) is Request and plain.Op is Operation.START and plain.Task == "pushup"


def test_unknown_task_is_the_one_error_reported() -> None:
    bad = {"Task": "cartwheel", "Op": "prepare", "CaptureID": 2}  # and no prepare fields
    with pytest.raises(RequestError) as refused:
        parse(json.dumps(bad))
    assert str(refused.value) == "unknown Task 'cartwheel'; known: pushup"
    face = {"Task": "FaceDetection", "Op": "status", "CaptureID": 2}
    assert parse(json.dumps(face)).Task == "FaceDetection"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"CaptureID": None}, "CaptureID: Input should be a valid integer (the lane's number"),
        ({"CaptureID": -1}, "CaptureID must be >= 0"),  # the ack echoes the value itself
        ({"CaptureID": True}, "CaptureID: expected a number, got true/false (the lane's"),
        ({"Op": "jump"}, "Op 'jump' is not known; use one of prepare, start, stop, status"),
        ({"Task": ""}, 'Task is empty (the exercise or "FaceDetection", e.g. "pushup")'),
        ({"Duration": 0}, "Duration must be > 0.0, got 0"),
        ({"Duration": 14401}, "Duration must be <= 14400.0, got 14401"),
        ({"Fps": 61}, "Fps must be <= 60.0, got 61"),
        ({"Level": 0}, "Level must be >= 1, got 0"),
        ({"Level": 6}, "Level must be <= 5, got 6"),
        ({"ModelPath": ""}, "ModelPath is empty (a file path under the media root)"),
        ({"Fps": [20]}, "Fps: Input should be a valid number (the assessment frame rate"),
    ],
)
def test_each_refusal_says_what_to_fix(change: dict[str, Any], error: str) -> None:
    with pytest.raises(RequestError) as refused:
        parse(json.dumps({**PREPARE, **change}))
    assert str(refused.value).startswith(error), str(refused.value)


def test_every_problem_is_listed_once() -> None:
    body = {k: v for k, v in PREPARE.items() if k not in ("ModelPath", "CapturePath")}
    with pytest.raises(RequestError) as refused:
        parse(json.dumps({**body, "Level": 9, "Fps": 0}))
    problems = str(refused.value).split("; ")
    assert problems == [
        "CapturePath is missing (the camera URL (rtsp://...), a file under the media root or "
        "a device index)",
        "ModelPath is missing (a file path under the media root)",
        "Fps must be > 0.0, got 0",
        "Level must be <= 5, got 9",
    ]


def test_missing_op_names_the_ops() -> None:
    with pytest.raises(RequestError, match=r"^Op is missing \(one of prepare, start"):
        parse('{"Task":"pushup","CaptureID":2}')


def test_ack_wire_format() -> None:
    assert ack("stop", "pushup", 2) == {
        "CaptureID": 2,
        "Task": "pushup",
        "error": "",
        "op": "stop",
        "result": "ok",
    }
    refused = ack("start", "pushup", 2, "not prepared", filename="x")
    assert refused["result"] == "error" and refused["filename"] == "x"
    assert encode_ack(refused, Framing()) == (
        '{"CaptureID":2,"Task":"pushup","error":"not prepared","filename":"x","op":"start",'
        '"result":"error"}'
    )
    assert encode_ack(ack("stop", "ü", 2), Framing(5, " ")).startswith(
        '5 {"CaptureID":2,"Task":"ü"'
    )


def test_push_wire_format() -> None:
    body = push((0,), 1.0, 1.0, (3.04, 4.56), "", capture_id=2, task="situp", session="s", frames=9)
    assert list(body) == [
        "status", "total", "count", "time", "msg", "CaptureID", "Task", "session", "frames",
    ]  # fmt: skip
    assert body["time"] == [3.0, 4.6] and body["total"] == 1 and isinstance(body["total"], int)
    # The push code is the task's own (sit-up 3333), prefixed only when the client used codes.
    assert encode_push(body, Framing(3001, " "), 3333).startswith('3333 {"status": [0], "total": 1')
    assert encode_push(body, None, 3333) == json.dumps(body)
    assert encode_push(body, Framing(), 3333) == json.dumps(body)
    face = push((0,), 1, 1, (0, 0), "é", capture_id=1, task="FaceDetection", session="f")
    assert encode_push(face, Framing(1001, " "), 1111).startswith("1111 ")
    assert '"msg": "é"' in encode_push(face, None, 1111)
