"""Small pieces every rule module uses: presence, standing, the unallowed-motion verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from khfsm.domain.exercise import MotionForbidden, RulesConfig
from khfsm.domain.pose import Landmark as L

from .geometry import HIP_L, HIP_R, KNEE_L, KNEE_R, Body, rnd
from .levels import per_level
from .timers import Streak

UPRIGHT_MAX_DEG = 30.0  # torso within this of vertical: upright
STRAIGHT_LEG_DEG = 150.0  # knee and hip angles above this: legs and hips extended
LYING_MIN_DEG = 60.0  # torso at least this far from vertical: lying / horizontal


def present(body: Body | None) -> bool:
    """Somebody is in view: both shoulders, or a shoulder and a hip, seen (a face or a hand
    alone is not a person; hips may be below the picture, as under a pull-up bar)."""
    if body is None:
        return False
    vis = body.vis
    shoulders = (vis[L.LEFT_SHOULDER] >= 0.3) + (vis[L.RIGHT_SHOULDER] >= 0.3)
    hips = (vis[L.LEFT_HIP] >= 0.3) + (vis[L.RIGHT_HIP] >= 0.3)
    return shoulders == 2 or (shoulders == 1 and hips >= 1)


def is_standing(body: Body) -> bool | None:
    """Upright with hips and knees extended; None when the legs are not seen (cannot tell)."""
    knee = body.side_angle(KNEE_L, KNEE_R, min_vis=0.5, floor=0.5)
    hip = body.side_angle(HIP_L, HIP_R, min_vis=0.5, floor=0.5)
    if knee is None or hip is None:
        return None
    return (
        body.torso_from_vertical() <= UPRIGHT_MAX_DEG
        and knee >= STRAIGHT_LEG_DEG
        and hip >= STRAIGHT_LEG_DEG
    )


def forbidden(frame: int, code: str, message: str, **measurements: float) -> MotionForbidden:
    """An unallowed-motion verdict with its (finite, rounded) measurements."""
    return MotionForbidden(
        frame=frame,
        code=code,
        message=message,
        measurements={k: rnd(v) for k, v in measurements.items() if math.isfinite(v)},
    )


def no_show_seconds(level: int) -> float:
    """How long nobody may be in view at the start before the test stops (a no-show); once
    the examinee has been seen, each exercise's own, shorter `absent_s` applies."""
    return per_level(level, (20.0, 17.0, 14.0, 12.0, 10.0))


@dataclass(frozen=True, slots=True)
class Presence:
    """Whether the examinee is in the lane: `left_lane` after having been seen, `no_person`
    when nobody ever came into view (walking in after the start is not leaving)."""

    absent: Streak = field(default_factory=Streak)
    arrived: bool = False

    def observe(
        self, body: Body | None, frame: int, config: RulesConfig, absent_s: float
    ) -> tuple[Presence, bool, MotionForbidden | None]:
        """One frame: the next presence, whether the examinee is in view, and a verdict when
        the lane has been empty too long (`absent_s` once seen, the no-show time before)."""
        seen = present(body)
        nxt, gone = self.update(frame, config.fps, seen, absent_s, no_show_seconds(config.level))
        return nxt, seen, gone

    def update(
        self, frame: int, fps: float, seen: bool, absent_s: float, no_show_s: float
    ) -> tuple[Presence, MotionForbidden | None]:
        absent = self.absent.update(frame, not seen)
        nxt = Presence(absent, self.arrived or seen)
        if nxt.arrived and absent.reached(frame, fps, absent_s):
            return nxt, forbidden(
                frame,
                "left_lane",
                f"left the lane: nobody in view for {absent_s:g} s",
                absent_s=absent.seconds(frame, fps),
            )
        if not nxt.arrived and absent.reached(frame, fps, no_show_s):
            return nxt, forbidden(
                frame,
                "no_person",
                f"nobody came into view for {no_show_s:g} s",
                absent_s=absent.seconds(frame, fps),
            )
        return nxt, None
