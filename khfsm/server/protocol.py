"""The tablet protocol (DESIGN.md §1), wire-compatible with the original tablets.

Frames are text, one JSON object each, optionally preceded by a decimal code
(``2001 {"Task":...}``). When a request carries a code, its acknowledgement carries the same
code with the same separator, and pushes for that lane carry the task's push code.

Acknowledgements: keys sorted, no spaces, as the original server wrote them::

    2001 {"CaptureID":2,"Task":"pushup","error":"","op":"prepare","result":"ok"}

Pushes: the original's key order and spacing, plus ``CaptureID``, ``Task`` and ``session``::

    2222 {"status": [0], "total": 1, "count": 1, "time": [3.0, 4.5], "msg": "", ...}

The push code is the task's own (`khfsm.domain.task.Task.push_code`: 2222 for pushup). A
session's final push also carries ``frames``; a reply to ``status`` carries ``state``.

Which fields a prepare or start takes depends on the kind of task (an exercise, the face
check): the server says so through `TaskRequests`; this module names no task.

Every problem with a request becomes an error acknowledgement whose ``error`` says what to
fix; nothing here raises to the caller except `RequestError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from khfsm.errors import KhfsmError
from khfsm.server.push import Push
from khfsm.server.redaction import redact, redact_value, scrub_surrogates, shorten

# Hard bounds of the wire; each site narrows them in its settings (`khfsm.server.limits`).
MAX_DURATION_S = 4 * 3600.0
MAX_FPS = 60.0
# Lane numbers: 0 to 2^31 - 1, a signed 32-bit integer, which every store column, the
# original tablets and any client language can hold (tablets use small numbers).
MAX_CAPTURE_ID = 2**31 - 1
MAX_TASK_CHARS = 64
MAX_URL_CHARS = 2048  # CapturePath: a camera URL or a file
MAX_PATH_CHARS = 1024  # ModelPath, PicturePath, SourceFile
MAX_DEPTH = 16  # nesting of JSON objects and arrays in one frame
ERROR_CHARS = 1000  # longest `error` an ack carries
# A leading code: digits, optional blanks, then the rest of the frame (not more digits).
_CODED = re.compile(r"\s*(\d{1,9})(?!\d)(\s*)(?=\S)(.*)\Z", re.S)


class Operation(StrEnum):
    PREPARE = "prepare"
    START = "start"
    STOP = "stop"
    STATUS = "status"


class RequestError(KhfsmError):
    """A request that cannot be carried out; `str(error)` is the `error` of the ack."""


@dataclass(frozen=True, slots=True)
class Framing:
    """How the client framed a request: its leading code (if any) and separator."""

    code: int | None = None
    separator: str = " "

    def wrap(self, body: str, code: int | None = None) -> str:
        """`body` prefixed with `code` (default: the request's own) if the client used codes."""
        if self.code is None:
            return body
        chosen = self.code if code is None else code
        return f"{chosen}{self.separator}{body}"


@dataclass(frozen=True, slots=True)
class Incoming:
    """A text frame split into its framing and JSON object (still unvalidated)."""

    framing: Framing
    data: Mapping[str, Any]

    def echo(self) -> tuple[Any, Any, Any]:
        """(CaptureID, Task, Op) as sent, for an error ack; None where absent."""
        return self.data.get("CaptureID"), self.data.get("Task"), self.data.get("Op")


def split_frame(text: str) -> Incoming:
    """Parse one text frame; raises RequestError (with what framing we could see)."""
    framing = Framing()
    body = text
    match = _CODED.match(text)
    if match:
        framing = Framing(int(match.group(1)), match.group(2) or " ")
        body = match.group(3)
    try:
        data = json.loads(body, parse_constant=_no_constant, parse_float=_finite_float)
    except _NotFinite as error:
        raise FrameError(framing, str(error)) from None
    except (json.JSONDecodeError, RecursionError) as error:
        raise FrameError(
            framing,
            f"the frame is not JSON ({error.msg if hasattr(error, 'msg') else 'nested too deep'}); "
            f'send one JSON object such as {{"Task":"pushup","Op":"status","CaptureID":2}}',
        ) from None
    except ValueError:  # an integer of more than 4300 digits (Python's own limit)
        raise FrameError(
            framing,
            "the frame holds an unreadable number (thousands of digits); send a lane's "
            "usual numbers",
        ) from None
    if not isinstance(data, dict):
        raise FrameError(framing, f"expected a JSON object, got {type(data).__name__}")
    problem = _shape_problem(data)
    if problem:
        # Echo nothing of a frame that cannot be written back out (a lone surrogate).
        raise FrameError(framing, problem)
    return Incoming(framing, data)


class _NotFinite(KhfsmError, ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotFinite(f"{name} is not a number this server takes; send a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise _NotFinite(f"the number {shorten(text, 40)} is too large; send a finite number")
    return value


def _shape_problem(data: Any) -> str:
    """Why a parsed frame cannot be served (too deeply nested, not valid Unicode), or ""."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"the frame is nested more than {MAX_DEPTH} levels deep; send a flat object"
        if isinstance(value, dict):
            stack.extend((key, depth) for key in value)
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and not _encodable(value):
            return (
                "the frame holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape),"
                " which is not valid Unicode; send valid UTF-8 text"
            )
    return ""


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class FrameError(RequestError):
    def __init__(self, framing: Framing, message: str) -> None:
        super().__init__(message)
        self.framing = framing


# -- request models ---------------------------------------------------------------------------


def _no_bool(value: Any) -> Any:
    # JSON true/false would otherwise pass as 1/0.
    if isinstance(value, bool):
        raise ValueError("expected a number, got true/false")
    return value


Number = Annotated[float, BeforeValidator(_no_bool)]
Integer = Annotated[int, BeforeValidator(_no_bool)]


class Request(BaseModel):
    # Extra keys are ignored: the tablets send keys that some ops do not use.
    model_config = ConfigDict(
        extra="ignore", frozen=True, str_strip_whitespace=True, allow_inf_nan=False
    )

    Task: str = Field(min_length=1, max_length=MAX_TASK_CHARS)
    Op: Operation
    CaptureID: Integer = Field(ge=0, le=MAX_CAPTURE_ID)


Camera = Annotated[str, Field(max_length=MAX_URL_CHARS)] | Integer
FilePath = Annotated[str, Field(min_length=1, max_length=MAX_PATH_CHARS)]
OptionalPath = Annotated[str, Field(max_length=MAX_PATH_CHARS)]


class ExercisePrepare(Request):
    CapturePath: Camera
    ModelPath: FilePath
    Duration: Number = Field(gt=0, le=MAX_DURATION_S)
    Fps: Number = Field(gt=0, le=MAX_FPS)
    Level: Integer = Field(ge=1, le=5)


class FacePrepare(Request):
    CapturePath: Camera
    ModelPath: FilePath
    PicturePath: OptionalPath = ""
    SourceFile: OptionalPath = ""


class FaceStart(Request):
    Duration: Number = Field(default=10.0, gt=0, le=MAX_DURATION_S)


_FIELD_HINTS: dict[str, str] = {
    "Task": 'the exercise or "FaceDetection", e.g. "pushup"',
    "Op": "one of prepare, start, stop, status",
    "CaptureID": f"the lane's number, 0 to {MAX_CAPTURE_ID}, e.g. 2",
    "CapturePath": "the camera URL (rtsp://...), a file under the media root or a device index",
    "ModelPath": "a file path under the media root",
    "Duration": "the test length in seconds, e.g. 122",
    "Fps": "the assessment frame rate, e.g. 20",
    "Level": "the grading level 1 to 5 (normally 5)",
}


# Fields every ack echoes itself: an error about one of them does not repeat its value.
_ECHOED = frozenset({"Task", "Op", "CaptureID"})


def _describe(error: Mapping[str, Any]) -> str:
    loc = error.get("loc") or ()
    field = str(loc[0]) if loc else "request"
    kind = error.get("type", "")
    hint = _FIELD_HINTS.get(field, "")
    value = error.get("input")
    got = "" if field in _ECHOED else f", got {_echo(value)}"
    if kind == "missing":
        return f"{field} is missing ({hint})" if hint else f"{field} is missing"
    ctx = error.get("ctx") or {}
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<"}.get(kind, "<=")
        limit = next(iter(ctx.values()), "?")
        return f"{field} must be {bound} {limit}{got}"
    if kind == "enum":
        return f"{field} {_echo(value)} is not known; use {hint}"
    if kind == "string_too_short":
        return f"{field} is empty ({hint})" if hint else f"{field} is empty"
    if kind == "string_too_long":
        limit = ctx.get("max_length", "?")
        size = len(value) if isinstance(value, str) else "?"
        return f"{field} is {size} characters long; at most {limit}"
    shown = got if not isinstance(value, dict | list) else ""
    expected = f" ({hint})" if hint else ""
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{field}: {message}{shown}{expected}"


def _echo(value: Any) -> str:
    """A bad value as an error quotes it: credentials masked, a few hundred characters."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**18:
        return f"a number of {len(str(abs(value)))} digits"
    if isinstance(value, str):
        return repr(shorten(redact(value)))
    return shorten(repr(value))


def validate(model: type[Request], data: Mapping[str, Any]) -> Request:
    """`data` as `model`, or RequestError listing every problem in words."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as error:
        problems = _unique(_describe(e) for e in error.errors(include_url=False))
        raise RequestError("; ".join(problems)) from None


def _unique(items: Any) -> list[str]:
    # `str | int` fields report one failure per union member; keep the first of each field.
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        key = item.split(" ", 1)[0].rstrip(":")
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


class TaskRequests(Protocol):
    """The request models of one kind of task (see `khfsm.server.kinds`)."""

    @property
    def prepare_request(self) -> type[Request]: ...

    @property
    def start_request(self) -> type[Request]: ...


def parse_request(incoming: Incoming, requests_of: Callable[[str], TaskRequests]) -> Request:
    """The envelope (Task, Op, CaptureID) and, for prepare/start, the op's own fields.

    `requests_of` raises `RequestError` (with the list of known tasks) when the Task is not
    served here; it runs before the op's fields are checked, so an unknown Task is the one
    error reported.
    """
    envelope = validate(Request, incoming.data)
    requests = requests_of(envelope.Task)
    if envelope.Op is Operation.PREPARE:
        return validate(requests.prepare_request, incoming.data)
    if envelope.Op is Operation.START:
        return validate(requests.start_request, incoming.data)
    return envelope


# -- outgoing ---------------------------------------------------------------------------------


def ack(op: Any, task: Any, capture_id: Any, error: str = "", **extra: Any) -> dict[str, Any]:
    """An acknowledgement. Whatever it echoes of the request is made safe here: credentials
    masked, strings shortened, values that cannot be echoed (objects, huge numbers) null."""
    body: dict[str, Any] = {
        "CaptureID": redact_value(capture_id),
        "Task": redact_value(task),
        "error": shorten(redact(error), ERROR_CHARS),
        "op": redact_value(op),
        "result": "error" if error else "ok",
    }
    body.update(extra)
    return body


def encode_ack(body: Mapping[str, Any], framing: Framing) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # A lone surrogate that slipped into a message would make the frame unsendable.
    return framing.wrap(scrub_surrogates(text))


def push(
    status: Sequence[int],
    total: int,
    count: int,
    time: tuple[float, float],
    msg: str,
    *,
    capture_id: int,
    task: str,
    session: str,
    **extra: Any,
) -> dict[str, Any]:
    """A progress or terminal push, in the original key order with the lane added."""
    body: dict[str, Any] = {
        "status": [int(code) for code in status],
        "total": int(total),
        "count": int(count),
        "time": [round(float(time[0]), 1), round(float(time[1]), 1)],
        "msg": msg,
        "CaptureID": capture_id,
        "Task": task,
        "session": session,
    }
    body.update(extra)
    return body


def push_body(update: Push) -> dict[str, Any]:
    """A lane's `Push` as the wire's push object."""
    return push(
        update.status,
        update.total,
        update.count,
        update.time,
        update.message,
        capture_id=update.capture_id,
        task=update.task,
        session=update.session,
        **update.details,
    )


def encode_push(body: Mapping[str, Any], framing: Framing | None, push_code: int) -> str:
    """The push as text: with the task's `push_code` when the client uses codes."""
    text = json.dumps(body, ensure_ascii=False)
    if framing is None or framing.code is None:
        return text
    return framing.wrap(text, push_code)
