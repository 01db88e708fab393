"""`khfsm tablet`: drive one lane from the command line, as a tablet would.

Sends prepare and start (and stop after --stop-after seconds), prints every ack and push as
it arrives, and exits after the session's terminal push: 0 when the test ran, 1 when the
server refused a request, 2 when the server cannot be reached.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import click

_CODED = re.compile(r"\s*(\d+)\s*(\{.*)\Z", re.S)


@dataclass
class Received:
    code: int | None
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    @property
    def is_ack(self) -> bool:
        return "op" in self.body and "result" in self.body

    @property
    def terminal(self) -> bool:
        """A session's final push, of any task: it carries the session's `frames`, which a
        rep push does not, and no `state`, which a reply to status does."""
        if self.is_ack or not isinstance(self.body.get("status"), list):
            return False
        return "frames" in self.body and "state" not in self.body


def parse_message(text: str) -> Received:
    match = _CODED.match(text)
    if match:
        return Received(int(match.group(1)), json.loads(match.group(2)))
    return Received(None, json.loads(text))


def frame(body: dict[str, Any], code: int | None) -> str:
    text = json.dumps(body, separators=(",", ":"))
    return f"{code} {text}" if code is not None else text


def describe(message: Received) -> str:
    body = message.body
    if message.is_ack:
        outcome = "ok" if body.get("result") == "ok" else f"ERROR: {body.get('error')}"
        extra = f" filename={body['filename']}" if body.get("filename") else ""
        line = (
            f"ack   {body.get('Task')}/{body.get('CaptureID')} {body.get('op')}: {outcome}{extra}"
        )
        readiness = body.get("readiness")
        if isinstance(readiness, dict) and readiness.get("summary"):
            line += f"\n      camera sees: {readiness['summary']}"
        return line
    time_span = body.get("time") or [0, 0]
    line = (
        f"push  {body.get('Task')}/{body.get('CaptureID')} status {body.get('status')} "
        f"total {body.get('total')} count {body.get('count')} "
        f"time {time_span[0]}-{time_span[1]} s"
    )
    if body.get("msg"):
        line += f"  {body['msg']}"
    return line


@dataclass
class Plan:
    url: str
    requests: list[dict[str, Any]]
    code: int | None
    stop_after: float | None
    task: str
    capture_id: int
    as_json: bool
    timeout: float
    video: str | None = None  # the ModelPath sent, for the summary
    session: str | None = None  # the session id, once a push has named it
    filename: str | None = None  # a face check's crop, from its start ack


async def drive(plan: Plan) -> int:
    import websockets

    refused = False
    try:
        async with websockets.connect(plan.url, max_size=None) as ws:
            code = plan.code
            for request in plan.requests:
                await ws.send(frame(request, code))
                if code is not None:
                    code += 1
                reply = await _until_ack(ws, plan)
                if reply is None:
                    return 1
                if reply.body.get("result") != "ok":
                    refused = True
                    if request["Op"] != "status":
                        return 1
            if plan.requests[-1]["Op"] == "status":
                if not refused:  # the status push follows its ack
                    _show(str(await asyncio.wait_for(ws.recv(), timeout=plan.timeout)), plan)
                return 1 if refused else 0
            stop_at = time.monotonic() + plan.stop_after if plan.stop_after is not None else None
            deadline = time.monotonic() + plan.timeout
            while time.monotonic() < deadline:
                wait = deadline - time.monotonic()
                if stop_at is not None:
                    wait = max(0.0, min(wait, stop_at - time.monotonic()))
                try:
                    text = await asyncio.wait_for(ws.recv(), timeout=wait)
                except TimeoutError:
                    if stop_at is not None and time.monotonic() >= stop_at:
                        stop = {"Task": plan.task, "Op": "stop", "CaptureID": plan.capture_id}
                        await ws.send(frame(stop, code))
                        stop_at = None
                    continue
                message = _show(str(text), plan)
                if message.terminal:
                    _summary(message, plan)
                    return 1 if refused else 0
            click.echo(f"no terminal push within {plan.timeout:g} s", err=True)
            return 1
    except (OSError, websockets.exceptions.WebSocketException) as error:
        click.echo(f"cannot talk to {plan.url}: {error}", err=True)
        return 2


async def _until_ack(ws: Any, plan: Plan) -> Received | None:
    while True:
        try:
            text = await asyncio.wait_for(ws.recv(), timeout=plan.timeout)
        except TimeoutError:
            click.echo("no acknowledgement from the server", err=True)
            return None
        message = _show(str(text), plan)
        if message.is_ack:
            return message


def _show(text: str, plan: Plan) -> Received:
    message = parse_message(text)
    if plan.as_json:
        click.echo(json.dumps({"code": message.code, **message.body}, ensure_ascii=False))
        return message
    click.echo(describe(message))
    session = message.body.get("session")
    if isinstance(session, str) and session != plan.session:
        plan.session = session
        click.echo(f"      session {session}")
    if message.is_ack and message.body.get("filename"):
        plan.filename = str(message.body["filename"])
    return message


def summary_line(body: dict[str, Any], plan: Plan) -> str:
    """One line that says how the test ended and where its evidence is."""
    from khfsm.domain.codes import EndStatus

    status = body.get("status") or [None]
    code = status[0]
    known = {int(s): s.message for s in EndStatus}
    if "similarity" in body:  # the face check's outcome: 0 match, 1 mismatch, 2 no face
        outcome = f"face check: {body.get('msg') or code} (status {code})"
    else:
        words = known.get(code, "") if isinstance(code, int) else ""
        outcome = (
            f"count {body.get('count')} of {body.get('total')} attempts, "
            f"end {code} ({body.get('msg') or words})"
        )
    where = []
    if plan.video:
        where.append(f"video {plan.video} (under the server's media root)")
    if plan.filename:
        where.append(f"face crop {plan.filename}")
    tail = "; ".join([f"session {body.get('session') or plan.session}", *where])
    return f"result: {outcome}; {tail}"


def _summary(message: Received, plan: Plan) -> None:
    if not plan.as_json:
        click.echo(summary_line(message.body, plan))


@click.command()
@click.argument("url")
@click.option("--task", default="pushup", show_default=True, help="Exercise (ignored with --face).")
@click.option("--capture", "capture_id", type=int, default=1, show_default=True, help="CaptureID.")
@click.option("--camera", help="CapturePath: rtsp://..., a file under the media root, or 0.")
@click.option("--video", help="ModelPath: where the server saves the session's video.")
@click.option("--duration", type=float, default=122.0, show_default=True)
@click.option("--fps", type=float, default=20.0, show_default=True)
@click.option("--level", type=int, default=5, show_default=True)
@click.option("--stop-after", type=float, help="Send stop after this many seconds.")
@click.option("--code", type=int, help="Prefix requests with codes from this one (e.g. 2001).")
@click.option("--face", is_flag=True, help="FaceDetection: --camera is the photo or stream.")
@click.option("--enrolled", help="FaceDetection ModelPath: the enrolled .npy vector.")
@click.option("--status", "status_only", is_flag=True, help="Only ask for the lane's status.")
@click.option("--json", "as_json", is_flag=True, help="Print each message as one JSON line.")
@click.option(
    "--timeout", type=float, help="Give up after this many seconds (default: Duration+30)."
)
def tablet(
    url: str,
    task: str,
    capture_id: int,
    camera: str | None,
    video: str | None,
    duration: float,
    fps: float,
    level: int,
    stop_after: float | None,
    code: int | None,
    face: bool,
    enrolled: str | None,
    status_only: bool,
    as_json: bool,
    timeout: float | None,
) -> None:
    """Drive a lane of the server at URL (ws://host:port) like a tablet.

    \b
    An exercise needs --camera and --video, e.g. with clip.mp4 in the server's media root:
      khfsm tablet ws://127.0.0.1:8765 --task pushup --capture 1 \\
          --camera clip.mp4 --video video/run-1.mp4 --duration 30 --fps 20 --level 5
    A face check needs --face, --camera (the photo) and --enrolled (the .npy vector).

    Prints every ack and push as it arrives, the session id once a push names it, and a
    last line with the count, the end status, the session id and where the video (or the
    face crop) is. Exits 0 when the test ran, 1 when the server refused a request, 2 when
    the server cannot be reached.
    """
    if face:
        from khfsm.domain.face import FACE_CHECK

        task = FACE_CHECK.task
    envelope: dict[str, Any] = {"Task": task, "CaptureID": capture_id}
    requests: list[dict[str, Any]]
    if status_only:
        requests = [{**envelope, "Op": "status"}]
    elif face:
        if not camera or not enrolled:
            raise click.UsageError("--face needs --camera (the photo) and --enrolled (.npy)")
        fields = {"CapturePath": camera, "ModelPath": enrolled, "PicturePath": "", "SourceFile": ""}
        requests = [
            {"Task": task, "Op": "prepare", "CaptureID": capture_id, **fields},
            {"Task": task, "Op": "start", "CaptureID": capture_id, "Duration": duration, **fields},
        ]
    else:
        if not camera or not video:
            raise click.UsageError("an exercise needs --camera and --video")
        requests = [
            {
                "Task": task,
                "Op": "prepare",
                "CaptureID": capture_id,
                "CapturePath": int(camera) if camera.isdigit() else camera,
                "ModelPath": video,
                "Duration": duration,
                "Fps": fps,
                "Level": level,
            },
            {**envelope, "Op": "start"},
        ]
    plan = Plan(
        url=url,
        requests=requests,
        code=code,
        stop_after=stop_after,
        task=task,
        capture_id=capture_id,
        as_json=as_json,
        timeout=timeout if timeout is not None else duration + 30.0,
        video=None if face or status_only else video,
    )
    sys.exit(asyncio.run(drive(plan)))
