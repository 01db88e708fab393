"""The FaceDetection task: is the person at the lane the enrolled candidate?

Over the same protocol as the exercises, and stored as a session like any other
(SessionPrepared(task="FaceDetection"), SessionStarted, FaceChecked, SessionEnded):

* ``prepare``: `ModelPath` is the enrolled face vector (a ``.npy`` of 192 values under the
  media root); `CapturePath` is the photo to check (a file under the media root) or a stream
  (rtsp://, http(s)://, a device index). Both are loaded/opened once to check them.
* ``start``: the check runs for at most `Duration` seconds (one attempt for a photo; frames
  until one shows exactly one face for a stream). The crop of the face is saved under the
  media root as ``faces/YYYYMMDD/HH_MM_SS_<photo name>_<session>.jpg`` and the start ack
  carries that path (relative to the media root) as ``filename``. `PicturePath` and
  `SourceFile` are accepted for compatibility and not used.
* then one push, which is also the session's terminal push, reports the outcome (the
  codes are the task's own, `khfsm.domain.face.FaceOutcome`):

  ======  ==============================================================================
  status  meaning
  ======  ==============================================================================
  [0]     match: similarity >= threshold (``count`` 1)
  [1]     mismatch: similarity < threshold (``count`` 0)
  [2]     no usable face within Duration (none, or several); the start ack is an error
  [-1]    stopped before the check finished; [-4] the photo/stream became unreadable;
          [-5] internal error
  ======  ==============================================================================

  The push also carries ``similarity`` and ``threshold``; ``msg`` says it in words. A
  completed check (match, mismatch or no face) is stored with end status −2 (normal end).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import cv2
import numpy as np

import khfsm
from khfsm.domain.codes import EndStatus
from khfsm.domain.events import FaceChecked, SessionEnded, SessionPrepared
from khfsm.domain.face import FACE_CHECK, FaceOutcome
from khfsm.domain.session import Session
from khfsm.server.camera import CameraError, open_camera
from khfsm.server.context import LaneContext
from khfsm.server.lane import INTERNAL_ERROR_MESSAGE, Lane, Outcome, Reply, lane_name
from khfsm.server.lanes import Recordings
from khfsm.server.paths import CameraSource, SourceKind, parse_source
from khfsm.server.protocol import FacePrepare, FaceStart, Request, RequestError
from khfsm.server.sources import check_photo, probe_camera, read_photo

if TYPE_CHECKING:
    from khfsm.vision.face import FaceAnalyzer, FaceMatch

log = logging.getLogger(__name__)

EMBEDDING_SIZE = 192
FACES_DIR = "faces"


def load_enrolled(path: Path) -> np.ndarray:
    """The enrolled vector, or RequestError saying what is wrong with the file."""
    if not path.is_file():
        raise RequestError(f"ModelPath {path} does not exist; enrol the candidate first")
    try:
        vector = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise RequestError(f"ModelPath {path} is not a .npy face vector: {error}") from None
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    if vector.size != EMBEDDING_SIZE or not np.all(np.isfinite(vector)):
        raise RequestError(
            f"ModelPath {path} holds {vector.size} values; an enrolled face vector has "
            f"{EMBEDDING_SIZE} finite values"
        )
    return vector


async def prepare_face(ctx: LaneContext, request: Request, recordings: Recordings) -> FaceLane:
    """Check the enrolled vector and the photo or camera, and create the session."""
    if not isinstance(request, FacePrepare):  # pragma: no cover - the protocol's choice
        raise TypeError(f"a face check is prepared with FacePrepare, not {request!r}")
    who = lane_name(request.Task, request.CaptureID)
    enrolled_path = ctx.media.resolve(request.ModelPath, "ModelPath")
    source = parse_source(request.CapturePath, ctx.media, ctx.settings.allowed_schemes)
    enrolled = await anyio.to_thread.run_sync(
        load_enrolled, enrolled_path, limiter=ctx.work_limiter
    )
    if source.kind is SourceKind.FILE:
        await check_photo(ctx, source)
    else:
        await probe_camera(ctx, source)
    await ctx.face.get()  # the face model loads now: a missing model fails the prepare
    session = Session(FACE_CHECK, who=who)
    events = session.prepare(
        SessionPrepared(
            task=FACE_CHECK.task,
            capture_id=request.CaptureID,
            level=0,
            fps=0.0,
            frames=0,
            source=source.display,
            video_path="",
            engine_version=khfsm.__version__,
            rules_version=FACE_CHECK.rules_version,  # the threshold is in FaceChecked
            models=dict(ctx.face_models),
            prepared_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
    )
    lane = FaceLane(ctx, request.CaptureID, session, source, enrolled)
    lane.apply(events)
    log.info(
        "%s: prepared face check of %s against %s",
        lane.label,
        source.display,
        ctx.media.relative(enrolled_path),
    )
    return lane


class FaceLane(Lane):
    def __init__(
        self,
        ctx: LaneContext,
        capture_id: int,
        session: Session,
        source: CameraSource,
        enrolled: np.ndarray,
    ) -> None:
        super().__init__(ctx, capture_id, session)
        self.source = source
        self.enrolled = enrolled
        self.duration = 10.0
        self._checked: FaceChecked | None = None  # its outcome code: FACE_CHECK.outcome
        self._start_reply: Reply | None = None  # answered once the check has an outcome
        self._start_error = ""

    # -- the lane template's hooks --------------------------------------------------------

    def on_start(self, request: Request | None, reply: Reply) -> None:
        if isinstance(request, FaceStart):
            self.duration = float(request.Duration)
        self._start_reply = reply
        log.info("%s: started face check (at most %g s)", self.label, self.duration)

    async def work(self) -> None:
        checked = self._checked = await self._check()
        self.apply(self.session.check_face(checked))

    def failure(self, error: Exception) -> tuple[EndStatus, str]:
        if isinstance(error, CameraError):
            self._start_error = str(error)
            return EndStatus.SOURCE_LOST, self._start_error
        log.exception("%s: internal error in the face check; status -5", self.label)
        self._start_error = INTERNAL_ERROR_MESSAGE
        return EndStatus.INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE

    def before_final_push(self) -> None:
        reply, checked = self._start_reply, self._checked
        if reply is None:
            return
        if checked is not None and FACE_CHECK.outcome(checked) is not FaceOutcome.NO_FACE:
            reply(filename=checked.filename)
        elif checked is not None:  # no usable face: the start is answered with why
            reply(checked.message)
        elif self._start_error:
            reply(self._start_error)
        else:  # stopped while it ran
            reply("the face check was stopped before it finished")

    def outcome(self, sealed: SessionEnded) -> Outcome:
        checked = self._checked
        if checked is None:  # stopped or failed: the end status, like any lane
            return super().outcome(sealed)
        code = FACE_CHECK.outcome(checked)
        return Outcome(
            (int(code),),
            1,
            1 if code is FaceOutcome.MATCH else 0,
            checked.message,
            {"similarity": round(checked.similarity, 4), "threshold": checked.threshold},
        )

    async def _check(self) -> FaceChecked:
        analyzer = await self.ctx.face.get()
        deadline = time.monotonic() + self.duration
        last_problem = "no face found"
        with anyio.move_on_after(self.duration):
            if self.source.kind is SourceKind.FILE:
                # CameraError (status −4) if the photo became unreadable since prepare
                image = await read_photo(self.ctx, self.source)
                result = await self._try(analyzer, image)
                if isinstance(result, FaceChecked):
                    return result
                last_problem = result
            else:
                camera = open_camera(self.source, timeout_s=self.ctx.settings.camera_grace_s)
                try:
                    await anyio.to_thread.run_sync(
                        camera.open, abandon_on_cancel=True, limiter=self.ctx.camera_limiter
                    )
                    while time.monotonic() < deadline:
                        frame = await anyio.to_thread.run_sync(
                            camera.read, abandon_on_cancel=True, limiter=self.ctx.camera_limiter
                        )
                        if frame is None:
                            await anyio.sleep(0.1)
                            continue
                        result = await self._try(analyzer, frame.image)
                        if isinstance(result, FaceChecked):
                            return result
                        last_problem = result
                finally:
                    with anyio.move_on_after(1.0, shield=True):
                        await anyio.to_thread.run_sync(camera.close, abandon_on_cancel=True)
        message = f"no usable face within {self.duration:g} s: {last_problem}"
        return FaceChecked(  # no crop saved: the outcome is "no usable face"
            similarity=0.0,
            accepted=False,
            threshold=float(analyzer.threshold),
            filename="",
            message=message,
        )

    async def _try(self, analyzer: FaceAnalyzer, image: np.ndarray) -> FaceChecked | str:
        """The check of this image (its crop saved), or why it has no usable face."""
        from khfsm.vision.face import FaceError

        def check() -> tuple[FaceMatch, np.ndarray]:
            return analyzer.verify(image, self.enrolled), analyzer.crop(image)

        try:
            match, crop = await anyio.to_thread.run_sync(check, limiter=self.ctx.work_limiter)
        except FaceError as error:
            return str(error)
        filename = await anyio.to_thread.run_sync(
            self._save_crop, crop, limiter=self.ctx.work_limiter
        )
        accepted = bool(match.accepted)
        words = "matches" if accepted else "does not match"
        message = (
            f"the face {words} the enrolled candidate (similarity {match.similarity:.3f}, "
            f"threshold {match.threshold:g})"
        )
        log.info("%s: %s; crop %s", self.label, message, filename)
        return FaceChecked(
            similarity=float(match.similarity),
            accepted=accepted,
            threshold=float(match.threshold),
            filename=filename,
            message=message,
        )

    def _save_crop(self, crop: np.ndarray) -> str:
        now = datetime.now()
        stem = Path(str(self.source.target)).stem if self.source.kind is SourceKind.FILE else "cam"
        name = f"{now:%H_%M_%S}_{stem}_{self.session_id[:8]}.jpg"
        path = self.ctx.media.root / FACES_DIR / f"{now:%Y%m%d}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), crop):
            raise CameraError(f"cannot save the face crop to {path}")
        return self.ctx.media.relative(path)
