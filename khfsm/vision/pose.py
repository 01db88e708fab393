"""BlazePose (MediaPipe 0.10.21 "full") on ONNX Runtime: detection, tracking ROI, landmarks.

The stages follow MediaPipe's PoseLandmarkCpu graph as authored:

* no track: whole-frame detector -> the examinee among its detections (not simply the best
  one: see `khfsm.vision.examinee`) -> ROI from keypoints 0/1;
* track: ROI from the previous frame's auxiliary landmarks 33/34 (PoseLandmarksToRoi);
* landmark model on the rotated ROI crop, heatmap refinement, projection to the image,
  world landmarks rotated by the ROI rotation.

Deliberate differences from MediaPipe's video mode: no temporal smoothing (one-euro filters)
anywhere, because smoothing belongs to the deterministic rules downstream, and the tracking ROI is
built from unsmoothed auxiliary landmarks. When tracking is lost (presence < 0.5) we re-detect in
the same frame instead of emitting nothing for it, so one lost frame costs one extra detector run
rather than a gap in the keypoints. And the person followed is chosen and kept by the rule of
`khfsm.vision.examinee` (nearest the lane centre, then the same person; chosen again only
after a long absence), never whoever the detector happens to rank first; each change of who
is followed is reported with the step.

Every function works on a batch of frames so that PoseTracker (batch of one) and
batching.PoseService (frames of many lanes) run exactly the same code.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from khfsm.vision.anchors import POSE_DETECTOR_ANCHORS, ssd_anchor_centers
from khfsm.vision.batchrun import BatchRunner, ModelRunner
from khfsm.vision.detection import Detection, decode_detections, remove_letterbox
from khfsm.vision.examinee import (
    Change,
    Examinee,
    ExamineeChange,
    Frame,
    Person,
    choose,
    jumped,
    missed,
    seen,
)
from khfsm.vision.fanout import FanOut
from khfsm.vision.geometry import (
    Letterbox,
    Roi,
    alignment_points_roi,
    crop_to_tensor,
    project_batch_to_image,
    remove_letterboxes,
    scale_roi,
)
from khfsm.vision.heatmap import refine_from_heatmap
from khfsm.vision.manifest import verified_model_path
from khfsm.vision.picture import Image, YuvPicture
from khfsm.vision.runtime import create_session

NUM_LANDMARKS = 33
NUM_MODEL_LANDMARKS = 39  # 33 + 2 auxiliary (ROI) + 4 unused
DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
MIN_DETECTION_SCORE = 0.5
MIN_PRESENCE = 0.5
ROI_SCALE = 1.25
ROI_TARGET_DEGREES = 90.0  # body axis (hips -> head) points up in the crop

LANDMARK_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)


@dataclass(frozen=True, slots=True)
class PoseEstimate:
    landmarks: np.ndarray  # float32 (33, 5): x_px, y_px, z (px, scale of x), visibility, presence
    world: np.ndarray  # float32 (33, 3): metres, origin between the hips
    score: float  # pose presence (0..1)


@dataclass(frozen=True, slots=True)
class Track:
    """A lane's tracking state between two frames."""

    roi: Roi | None = None  # the crop for the next frame (None: run the detector)
    examinee: Examinee = field(default_factory=Examinee)


@dataclass(frozen=True, slots=True)
class PoseStep:
    """Result of one frame plus the tracking state for the lane's next frame."""

    estimate: PoseEstimate | None
    next_track: Track
    examinee: ExamineeChange | None = None  # who is followed changed in this frame
    cpu_s: float = 0.0  # CPU seconds of this frame's share of its batch (PoseService)

    @property
    def next_roi(self) -> Roi | None:
        return self.next_track.roi


class PoseModels:
    """The two ONNX sessions and the detector anchors. Thread-safe: ONNX Runtime sessions
    allow concurrent run() calls and everything else here is read-only."""

    def __init__(self, detector: ort.InferenceSession, landmarker: ort.InferenceSession) -> None:
        self.detector = detector
        self.landmarker = landmarker
        self.anchors = ssd_anchor_centers(POSE_DETECTOR_ANCHORS)
        self._run_detector: ModelRunner = BatchRunner.for_session(detector)
        self._run_landmarker: ModelRunner = BatchRunner.for_session(landmarker)
        self._fanout = FanOut(1)  # a batch's crops, one after the other (crop_in_threads)

    @property
    def on_gpu(self) -> bool:
        return self._run_landmarker.io_binding

    @property
    def runners(self) -> tuple[ModelRunner, ModelRunner]:
        """How the detector and the landmark model are run."""
        return self._run_detector, self._run_landmarker

    def use_batching(self, max_batch: int) -> None:
        """Run both models the GPU's way (`khfsm.vision.batchrun`): I/O binding, batches
        padded to a power of two up to `max_batch`. PoseService does it on a GPU, the
        benchmarks likewise, and tests on CPU, where the same code runs with device "cpu"."""
        self.use_runners(
            BatchRunner(self.detector, io_binding=True, fixed_batch=max_batch),
            BatchRunner(self.landmarker, io_binding=True, fixed_batch=max_batch),
        )

    def use_runners(self, detector: ModelRunner, landmarker: ModelRunner) -> None:
        """Run the models through these (`use_batching`; bench_pose.py replays a model's
        outputs to time the work around it)."""
        self._run_detector, self._run_landmarker = detector, landmarker

    def crop_in_threads(self, threads: int) -> None:
        """Crop the frames of each batch in `threads` threads at once (`khfsm.vision.fanout`;
        1: one after the other in the batch's own thread)."""
        if threads != self._fanout.threads:
            self._fanout.close()
            self._fanout = FanOut(threads)

    @property
    def crop_threads(self) -> int:
        return self._fanout.threads

    def _crop_batch(
        self,
        runner: ModelRunner,
        size: int,
        crop: Callable[[int, np.ndarray], Letterbox],
        count: int,
    ) -> tuple[np.ndarray, list[Letterbox]]:
        """The batch of `count` frames that `runner` runs, each frame i written by
        crop(i, the batch's frame i), and their letterboxes."""
        batch = runner.batch_of(count, (size, size, 3))
        return batch, self._fanout.map(lambda i: crop(i, batch[i]), range(count))

    def detect(self, frames: Sequence[Image]) -> list[list[Detection]]:
        """Person detections per frame (BGR or planes; normalised image coordinates), best first."""
        if not frames:
            return []

        def crop(i: int, out: np.ndarray) -> Letterbox:
            return crop_to_tensor(
                frames[i],
                None,
                DETECTOR_SIZE,
                keep_aspect_ratio=True,
                value_range=(-1.0, 1.0),
                border_zero=True,
                out=out,
            )[1]

        batch, letterboxes = self._crop_batch(self._run_detector, DETECTOR_SIZE, crop, len(frames))
        boxes, scores = self._run_detector.run(batch, len(frames))
        out: list[list[Detection]] = []
        for i, letterbox in enumerate(letterboxes):
            detections = decode_detections(
                boxes[i], scores[i], self.anchors, DETECTOR_SIZE, MIN_DETECTION_SCORE
            )
            # MediaPipe keeps only the first (best) one; the examinee rule needs them all.
            out.append([remove_letterbox(d, letterbox) for d in detections])
        return out

    def landmarks(self, frames: Sequence[Image], rois: Sequence[Roi]) -> list[_Landmarks]:
        if not frames:
            return []
        if len(frames) != len(rois):
            raise ValueError(f"{len(frames)} frames but {len(rois)} crops")

        def crop(i: int, out: np.ndarray) -> Letterbox:
            return crop_to_tensor(
                frames[i],
                rois[i],
                LANDMARK_SIZE,
                keep_aspect_ratio=True,
                value_range=(0.0, 1.0),
                border_zero=False,  # REPLICATE: the ROI usually extends past the frame
                out=out,
            )[1]

        batch, letterboxes = self._crop_batch(
            self._run_landmarker, LANDMARK_SIZE, crop, len(frames)
        )
        # The bundled model has no segmentation output: dropped as unused (models/convert.py).
        raw, presence, heatmaps, world = self._run_landmarker.run(batch, len(frames))
        return _decode_landmarks(raw, presence, heatmaps, world, rois, letterboxes)


@dataclass(frozen=True, slots=True)
class _Landmarks:
    image: np.ndarray  # (39, 5) normalised image coords, z, visibility, presence
    world: np.ndarray  # (33, 3) metres
    presence: float


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _decode_landmarks(
    raw: np.ndarray,
    presence: np.ndarray,
    heatmaps: np.ndarray,
    world: np.ndarray,
    rois: Sequence[Roi],
    letterboxes: Sequence[Letterbox],
) -> list[_Landmarks]:
    """The landmark model's outputs for a batch of crops, decoded together: one array
    operation per step for the whole batch, not one per frame (a GPU batch of 16 frames
    otherwise spends its time in NumPy's per-call overhead, holding the GIL). Every step is
    elementwise, or a reduction within one frame's landmark, so each frame's result is bit for
    bit what decoding it alone gives (tests/vision/test_batching.py)."""
    frames = len(rois)
    values = raw.reshape(frames, NUM_MODEL_LANDMARKS, 5).astype(np.float64)
    crop = np.stack(
        [
            values[..., 0] / LANDMARK_SIZE,
            values[..., 1] / LANDMARK_SIZE,
            values[..., 2] / LANDMARK_SIZE,
            _sigmoid(values[..., 3]),
            _sigmoid(values[..., 4]),
        ],
        axis=-1,
    )
    crop = refine_from_heatmap(crop, heatmaps)
    crop[..., :2] = remove_letterboxes(crop[..., :2], letterboxes)
    image = project_batch_to_image(crop, rois)
    metres = world.reshape(frames, NUM_MODEL_LANDMARKS, 3)[:, :NUM_LANDMARKS].astype(np.float64)
    # np.cos of each ROI's angle, as a float: the same values as one frame alone computes.
    cos = np.array([[np.cos(roi.rotation)] for roi in rois])
    sin = np.array([[np.sin(roi.rotation)] for roi in rois])
    rotated = np.stack(
        [
            cos * metres[..., 0] - sin * metres[..., 1],
            sin * metres[..., 0] + cos * metres[..., 1],
            metres[..., 2],
        ],
        axis=-1,
    )
    return [
        _Landmarks(image=image[i], world=rotated[i], presence=float(presence[i, 0]))
        for i in range(frames)
    ]


def _roi_from_detection(detection: Detection, width: int, height: int) -> Roi:
    """PoseDetectionToRoi: hip centre (kp0) and full-body circle point (kp1)."""
    roi = alignment_points_roi(
        detection.keypoints[0], detection.keypoints[1], width, height, ROI_TARGET_DEGREES
    )
    return scale_roi(roi, width, height, ROI_SCALE)


def _roi_from_landmarks(landmarks: _Landmarks, width: int, height: int) -> Roi:
    """PoseLandmarksToRoi: auxiliary landmarks 33 (centre) and 34 (scale point)."""
    aux = landmarks.image
    roi = alignment_points_roi(aux[33], aux[34], width, height, ROI_TARGET_DEGREES)
    return scale_roi(roi, width, height, ROI_SCALE)


def _to_estimate(landmarks: _Landmarks, width: int, height: int) -> PoseEstimate:
    image = landmarks.image[:NUM_LANDMARKS]
    pixels = np.empty((NUM_LANDMARKS, 5), dtype=np.float32)
    pixels[:, 0] = image[:, 0] * width
    pixels[:, 1] = image[:, 1] * height
    pixels[:, 2] = image[:, 2] * width  # z is relative to the ROI width, i.e. scaled like x
    pixels[:, 3:5] = image[:, 3:5]
    return PoseEstimate(
        landmarks=pixels,
        world=landmarks.world.astype(np.float32),
        score=landmarks.presence,
    )


def _person_of_detection(detection: Detection, width: int, height: int) -> Person:
    return Person.from_alignment(detection.keypoints[0], detection.keypoints[1], width, height)


def _person_of_landmarks(landmarks: _Landmarks, width: int, height: int) -> Person:
    return Person.from_alignment(landmarks.image[33], landmarks.image[34], width, height)


def estimate_batch(
    models: PoseModels,
    frames: Sequence[Image],
    tracks: Sequence[Track | None],
    *,
    examinee_rule: bool = True,
) -> list[PoseStep]:
    """One step of several independent tracks (one frame each, BGR uint8).

    tracks[i] is the lane's state after its previous frame (None: a new lane). At most four
    model calls are batched across all lanes: detection where there is no track or the
    examinee is still settling (every `SETTLING_STRIDE`-th frame); landmarks for the tracked
    crops and for the candidates a lane has to choose among; then detection and the
    candidates' landmarks again for tracks lost in this frame. `examinee_rule=False`
    follows MediaPipe's graph as authored instead (the best-ranked detection, whoever it
    is): for parity checks of the models only.

    Candidates are compared by where the landmark model puts them, not by the detector's own
    hip estimate: that is predicted from the face and can be off by half a body for a body
    lying or in a plank, which would make the examinee look like somebody else.
    """
    if not examinee_rule:
        return _mediapipe_batch(models, frames, tracks)
    states = [track or Track() for track in tracks]
    sizes = [(frame.shape[1], frame.shape[0]) for frame in frames]
    detections: dict[int, list[Detection]] = {}
    _detect_into(
        models,
        frames,
        detections,
        [i for i, t in enumerate(states) if t.roi is None or t.examinee.looking],
    )
    # Lanes that choose among their candidates in this frame: no track, or a settling track
    # for which the detector shows a clearly more central person.
    choosing = {
        i
        for i, found in detections.items()
        if states[i].roi is None or _switch_in_sight(states[i].examinee, found, sizes[i])
    }
    tracked_jobs = [(i, roi) for i, t in enumerate(states) if (roi := t.roi) is not None]
    tracked_results = _landmarks_of(models, frames, tracked_jobs)
    tracked = {i: r for (i, _), r in zip(tracked_jobs, tracked_results, strict=True)}
    lost = [
        i
        for i, _ in tracked_jobs
        if tracked[i].presence < MIN_PRESENCE
        or jumped(states[i].examinee, _person_of_landmarks(tracked[i], *sizes[i]))
    ]
    _detect_into(models, frames, detections, [i for i in lost if i not in detections])
    choosing |= set(lost)
    candidate_jobs = [
        (i, _roi_from_detection(d, *sizes[i])) for i in sorted(choosing) for d in detections[i]
    ]
    candidates: dict[int, list[_Landmarks]] = {i: [] for i in choosing}
    candidate_results = _landmarks_of(models, frames, candidate_jobs)
    for (i, _), landmarks in zip(candidate_jobs, candidate_results, strict=True):
        candidates[i].append(landmarks)
    steps = []
    for i, state in enumerate(states):
        result: _Landmarks | None = None if i in lost else tracked.get(i)
        change: Change | None = None
        if i in choosing:
            found = state.roi is not None and i not in lost
            people = [r for r in candidates[i] if r.presence >= MIN_PRESENCE]
            choice = choose(
                replace(state.examinee, found=found),
                [_person_of_landmarks(r, *sizes[i]) for r in people],
                Frame(*sizes[i]),
            )
            if choice.index is not None:
                result, change = people[choice.index], choice.change
        steps.append(_step(state, result, change, len(detections.get(i, ())), *sizes[i]))
    return steps


def _mediapipe_batch(
    models: PoseModels, frames: Sequence[Image], tracks: Sequence[Track | None]
) -> list[PoseStep]:
    n = len(frames)
    sizes = [(frame.shape[1], frame.shape[0]) for frame in frames]
    crops = [track.roi if track else None for track in tracks]
    detections: dict[int, list[Detection]] = {}
    results: list[_Landmarks | None] = [None] * n

    def detect_and_mark(indices: list[int]) -> None:
        _detect_into(models, frames, detections, indices)
        for i in indices:
            best = detections[i][:1]
            crops[i] = _roi_from_detection(best[0], *sizes[i]) if best else None

    def mark(indices: list[int]) -> None:
        jobs = [(i, roi) for i in indices if (roi := crops[i]) is not None]
        for (i, _), result in zip(jobs, _landmarks_of(models, frames, jobs), strict=True):
            results[i] = result

    detect_and_mark([i for i in range(n) if crops[i] is None])
    mark(list(range(n)))
    lost = [
        i
        for i, r in enumerate(results)
        if i not in detections and (r is None or r.presence < MIN_PRESENCE)
    ]
    if lost:
        detect_and_mark(lost)
        for i in lost:
            results[i] = None
        mark(lost)
    steps = []
    for i, result in enumerate(results):
        if result is None or result.presence < MIN_PRESENCE:
            steps.append(PoseStep(estimate=None, next_track=Track()))
        else:
            roi = _roi_from_landmarks(result, *sizes[i])
            steps.append(PoseStep(_to_estimate(result, *sizes[i]), next_track=Track(roi)))
    return steps


def _switch_in_sight(
    examinee: Examinee, detections: Sequence[Detection], size: tuple[int, int]
) -> bool:
    """Whether, by the detector's rough positions, a candidate may replace the examinee (to
    be confirmed by the landmarks of the candidates)."""
    people = [_person_of_detection(d, *size) for d in detections]
    return choose(examinee, people, Frame(*size)).change is Change.SWITCHED


def _step(
    state: Track,
    result: _Landmarks | None,
    change: Change | None,
    candidates: int,
    width: int,
    height: int,
) -> PoseStep:
    before = state.examinee
    if result is None or result.presence < MIN_PRESENCE:
        report = None
        if before.found and before.last_seen is not None:
            report = ExamineeChange(Change.LOST, before.last_seen, candidates)
        return PoseStep(estimate=None, next_track=Track(None, missed(before)), examinee=report)
    person = _person_of_landmarks(result, width, height)
    # Found again by the detector in the very frame the tracker lost her: she was followed
    # without a gap (MediaPipe's re-detection), nothing changed for the record.
    silent = change is Change.REGAINED and before.found
    return PoseStep(
        estimate=_to_estimate(result, width, height),
        next_track=Track(_roi_from_landmarks(result, width, height), seen(before, person, change)),
        examinee=None if change is None or silent else ExamineeChange(change, person, candidates),
    )


def _detect_into(
    models: PoseModels,
    frames: Sequence[Image],
    detections: dict[int, list[Detection]],
    indices: Sequence[int],
) -> None:
    found = models.detect([frames[i] for i in indices])
    for i, people in zip(indices, found, strict=True):
        detections[i] = people


def _landmarks_of(
    models: PoseModels, frames: Sequence[Image], jobs: Sequence[tuple[int, Roi]]
) -> list[_Landmarks]:
    """Landmarks of each (frame index, crop) job, in one batch."""
    return models.landmarks([frames[i] for i, _ in jobs], [roi for _, roi in jobs])


class PoseTracker:
    """Pose of the examinee in one video (one lane). Holds only the lane's tracking state."""

    def __init__(self, models: PoseModels | None = None, *, examinee_rule: bool = True) -> None:
        self._models = models or load_pose_models()
        self._examinee_rule = examinee_rule  # False: MediaPipe's choice (parity checks only)
        self._track = Track()
        self.examinee_change: ExamineeChange | None = None  # of the last processed frame

    @property
    def roi(self) -> Roi | None:
        """The ROI the next frame will be cropped with (None: it will run the detector)."""
        return self._track.roi

    @property
    def track(self) -> Track:
        return self._track

    def step(self, frame_bgr: Image) -> PoseStep:
        check_frame(frame_bgr)
        step = estimate_batch(
            self._models, [frame_bgr], [self._track], examinee_rule=self._examinee_rule
        )[0]
        self._track = step.next_track
        self.examinee_change = step.examinee
        return step

    def process(self, frame_bgr: Image) -> PoseEstimate | None:
        return self.step(frame_bgr).estimate

    def reset(self) -> None:
        self._track = Track()
        self.examinee_change = None


def check_frame(frame: Image) -> None:
    if isinstance(frame, YuvPicture):
        return  # its planes were checked when it was made
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(
            f"expected a BGR uint8 image of shape (H, W, 3), got {frame.dtype} {frame.shape}"
        )


_load_lock = threading.Lock()


def load_pose_models(
    threads: int = 1, providers: str = "auto", directory: Path | None = None
) -> PoseModels:
    """The pose detector and landmark sessions (from `directory`, default the bundled
    models), verified against the manifest; cached per process and per arguments."""
    with _load_lock:
        return _load_pose_models(threads, providers, directory)


@functools.cache
def _load_pose_models(threads: int, providers: str, directory: Path | None) -> PoseModels:
    return PoseModels(
        detector=create_session(
            verified_model_path("pose_detection", directory), threads, providers
        ),
        landmarker=create_session(
            verified_model_path("pose_landmark", directory), threads, providers
        ),
    )
