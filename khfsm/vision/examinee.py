"""Which person in view is the examinee: a pure rule over the pose detector's candidates.

An exam lane often has other people in view: the partner who holds the feet for sit-ups, the
neighbour lane, a proctor walking past. MediaPipe's pose graph follows whoever its detector
ranks first; here the examinee is chosen deliberately and then followed:

1. **Choice.** The first time anybody is in view, the examinee is the candidate nearest to the
   lane's centre (the frame centre: the lane camera is set up to frame the examinee; a partner
   at the feet or a neighbour is off to one side).
2. **Settling.** During the first `SETTLING_FRAMES` frames after that choice (2 s at the usual
   20 fps) the detector keeps looking, at every `SETTLING_STRIDE`-th frame, and a candidate
   clearly nearer the lane centre (by `SWITCH_MARGIN` of the frame diagonal) replaces the
   first choice: the examinee lying on the mat is often missed by the face-based detector
   while the partner sitting at her feet is not, so the first frame alone may show only the
   partner.
3. **Continuity.** From then on the same person is followed: when the landmark tracker
   loses the examinee (or jumps away from her), the candidates are searched for one
   continuing her track, i.e. whose body centre lies within `CONTINUITY_GATE` body radii of
   where she was last seen, the nearest such. Nobody else is taken instead: a frame without
   her is a frame without a person (recorded as a loss).
4. **Choosing again.** Only once she has been missing for `REACQUIRE_FRAMES` frames is the
   examinee chosen again as at the start (nearest the lane centre, then settling): she may
   have moved while out of sight (walking into position), and a lane whose examinee is gone
   that long is the rules' business (`left_lane`), not the tracker's.

Every change of who is followed is reported as an `ExamineeChange` (chosen, switched,
regained, lost) so that the session records it instead of silently counting someone else.

A person's position is the landmark model's pair of alignment points for her (auxiliary
landmarks 33/34, run on each candidate's crop): the hip centre and a point on the circle around
the whole body, whose distance is the body radius. The detector's own estimate of the same
points is predicted from the face and can be half a body off for somebody lying or in a plank,
so it only serves to notice, cheaply, that a clearly more central person may be in view.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from khfsm.domain.events import ExamineeChanged, ExamineeLost

# Frames after the first choice during which a clearly more central person may replace it.
# Two seconds at 20 fps: long enough for an examinee lying in the start position to move once
# (the detector finds a person sitting or kneeling far more reliably than one lying down),
# short enough that a proctor who walks through the middle of the lane later is never taken.
SETTLING_FRAMES = 40
# While settling, the detector looks at every this many frames (5 looks a second at 20 fps,
# 10 in the settling time). Who is where in the lane changes as fast as a person moves into
# position, a matter of a second, not of one frame (50 ms), so a look every 200 ms misses no
# arrival; looking at every frame cost a detector run per frame for 2 s, which on a loaded
# server made every lane started at the same moment fall behind together (issue 14).
SETTLING_STRIDE = 4
# How much nearer the lane centre, as a fraction of the frame diagonal, a candidate must be
# to replace the first choice while settling. Two people side by side on one rig are about
# equally central and the detector's hip centre of a moving person wanders by ~0.1 of the
# diagonal, so anything smaller would swap them back and forth; a partner at the feet or a
# neighbour is a quarter of the frame or more further out.
SWITCH_MARGIN = 0.15
# Frames without the examinee after which she is chosen again as at the start. One second
# at 20 fps: longer than the detector's usual misses of a body lying down or turning (a few
# frames), so a partner is not taken over a flicker; shorter than any exercise's `left_lane`
# time (3 s at level 5), so an examinee who moved while out of sight is found again first.
REACQUIRE_FRAMES = 20
# A candidate continues the examinee's track when its hip centre is within this many body
# radii (hip centre to the full-body circle, about half the body's length) of hers. Between
# two frames a body moves a few centimetres; even after a second out of sight the hips of a
# person exercising in place stay within a fraction of the radius, while a partner at the feet
# or a neighbour is more than one radius away.
CONTINUITY_GATE = 0.75


@dataclass(frozen=True, slots=True)
class Person:
    """A person's alignment points in pixels: hip centre (x, y) and body radius."""

    x: float
    y: float
    radius: float

    @classmethod
    def from_alignment(
        cls,
        centre: Sequence[float],
        scale_point: Sequence[float],
        width: int,
        height: int,
    ) -> Person:
        """From normalised image coordinates of the hip centre and the full-body point."""
        x, y = float(centre[0]) * width, float(centre[1]) * height
        radius = math.hypot(float(scale_point[0]) * width - x, float(scale_point[1]) * height - y)
        return cls(x=x, y=y, radius=radius)

    def distance(self, other: Person) -> float:
        return math.hypot(self.x - other.x, self.y - other.y)

    def continues(self, candidate: Person) -> bool:
        """Whether `candidate` can be this person one (or a few) frames later."""
        return self.distance(candidate) <= CONTINUITY_GATE * max(self.radius, 1.0)


@dataclass(frozen=True, slots=True)
class Frame:
    """The frame's size, for the lane centre."""

    width: int
    height: int

    @property
    def diagonal(self) -> float:
        return math.hypot(self.width, self.height)

    def off_centre(self, person: Person) -> float:
        """Distance of the person's hip centre from the frame centre, in frame diagonals."""
        return math.hypot(person.x - self.width / 2, person.y - self.height / 2) / self.diagonal


class Change(StrEnum):
    CHOSEN = "chosen"  # chosen as at the start (the first person, or after a long absence)
    SWITCHED = "switched"  # a clearly more central person replaced the first choice
    REGAINED = "regained"  # the examinee is followed again after being lost
    LOST = "lost"  # the examinee is no longer found; nobody is followed


@dataclass(frozen=True, slots=True)
class ExamineeChange:
    """What changed about who is followed, in the frame just processed."""

    change: Change
    person: Person  # the person followed from now on (for LOST: where she was last seen)
    candidates: int  # people the detector saw in this frame (0 when it did not run)

    def as_event(self, frame: int, width: int, height: int) -> ExamineeChanged | ExamineeLost:
        """The session event recording this change, just before frame `frame`'s keypoints."""
        x, y = round(self.person.x / width, 4), round(self.person.y / height, 4)
        if self.change is Change.LOST:
            return ExamineeLost(frame=frame, x=x, y=y, candidates=self.candidates)
        return ExamineeChanged(
            frame=frame, reason=self.change.value, x=x, y=y, candidates=self.candidates
        )


@dataclass(frozen=True, slots=True)
class Examinee:
    """Who is followed: where the examinee was last seen, whether she was found in the last
    frame, how many frames have passed since she was chosen and since she was last found."""

    last_seen: Person | None = None
    found: bool = False
    frames: int = 0
    missing: int = 0

    @property
    def settling(self) -> bool:
        return self.last_seen is None or self.frames < SETTLING_FRAMES

    @property
    def looking(self) -> bool:
        """Whether the detector should look for a more central person in this frame."""
        return self.settling and (self.last_seen is None or self.frames % SETTLING_STRIDE == 0)


@dataclass(frozen=True, slots=True)
class Choice:
    """The candidate to follow in this frame (None: keep the tracked one, or nobody)."""

    index: int | None
    change: Change | None


def choose(examinee: Examinee, candidates: Sequence[Person], frame: Frame) -> Choice:
    """Which detector candidate to follow, by the rule in this module's docstring.

    `examinee.found` says whether the landmark tracker is still following her (then `index`
    None means: keep following with the tracker, nobody better was seen).
    """
    last = examinee.last_seen
    if last is None:
        return _nearest_the_centre(candidates, frame)
    if examinee.settling:
        others = [i for i, c in enumerate(candidates) if not last.continues(c)]
        if others:
            best = min(others, key=lambda i: frame.off_centre(candidates[i]))
            if frame.off_centre(candidates[best]) < frame.off_centre(last) - SWITCH_MARGIN:
                return Choice(best, Change.SWITCHED)
    if examinee.found:
        return Choice(None, None)
    continuing = [i for i, c in enumerate(candidates) if last.continues(c)]
    if continuing:
        nearest = min(continuing, key=lambda i: last.distance(candidates[i]))
        return Choice(nearest, Change.REGAINED)
    if examinee.missing >= REACQUIRE_FRAMES:
        return _nearest_the_centre(candidates, frame)
    return Choice(None, None)


def _nearest_the_centre(candidates: Sequence[Person], frame: Frame) -> Choice:
    if not candidates:
        return Choice(None, None)
    best = min(range(len(candidates)), key=lambda i: frame.off_centre(candidates[i]))
    return Choice(best, Change.CHOSEN)


def jumped(examinee: Examinee, tracked: Person) -> bool:
    """The landmark tracker's person is too far from where the examinee was a frame ago to be
    her: it slid onto somebody else (a partner overlapping her crop)."""
    last = examinee.last_seen
    return examinee.found and last is not None and not last.continues(tracked)


def seen(examinee: Examinee, person: Person, change: Change | None) -> Examinee:
    """The examinee after a frame in which `person` was followed."""
    frames = 0 if change is Change.CHOSEN else examinee.frames + 1
    return Examinee(last_seen=person, found=True, frames=frames, missing=0)


def missed(examinee: Examinee) -> Examinee:
    """The examinee after a frame in which she was not found."""
    if examinee.last_seen is None:
        return examinee
    return replace(examinee, found=False, frames=examinee.frames + 1, missing=examinee.missing + 1)
