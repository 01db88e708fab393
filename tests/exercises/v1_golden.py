"""Golden verdicts of the released `*-1` rules on fixed synthetic sessions.

The `*-2` rules are new modules beside the released ones, and the shared helpers the `*-1`
rules import are never edited; this golden proves it: the same synthetic sessions must keep
producing exactly these verdicts (frames, status codes, every measurement) under `pushup-1`
and `situp-1`. Regenerate with `python -m tests.exercises.v1_golden` only for a deliberate,
versioned change (which a released rules version never gets).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from khfsm.exercises import pushup, situp

from khfsm.domain.exercise import Exercise
from tests.exercises.kinematics import Clip, path, pushup_figure, render, reps, run, situp_figure

GOLDEN = Path(__file__).parent / "golden" / "v1_verdicts.json"


def sessions() -> dict[str, tuple[Exercise, Clip]]:
    """The fixed sessions: clean reps, a shallow one, a bounce, bad form."""
    pushups = reps(170.0, 65.0, 2) + path(
        (115.0, 0.7), (170.0, 0.7), (65.0, 0.8), (120.0, 0.6), (65.0, 0.6), (170.0, 0.8),
        (170.0, 1.0), start=170.0,
    )  # fmt: skip
    sagging = reps(170.0, 65.0, 2)
    hips = reps(150.0, 50.0, 2) + path((95.0, 0.8), (150.0, 0.8), (150.0, 1.0), start=150.0)
    return {
        "pushup-1": (pushup.EXERCISE, render([pushup_figure(e) for e in pushups])),
        "pushup-1 sag": (
            pushup.EXERCISE,
            render([pushup_figure(e, sag=25.0) for e in sagging]),
        ),
        "situp-1": (situp.EXERCISE, render([situp_figure(h) for h in hips])),
        "situp-1 hands": (
            situp.EXERCISE,
            render([situp_figure(h, hands_on_head=False) for h in reps(150.0, 50.0, 2)]),
        ),
    }


def verdicts() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (exercise, clip) in sessions().items():
        summary = run(exercise, clip)
        out[name] = {
            "rules_version": exercise.rules_version,
            "end_status": summary.end_status,
            "reps": [
                {
                    "start_frame": r.start_frame,
                    "end_frame": r.end_frame,
                    "status": list(r.status),
                    "measurements": dict(sorted(r.measurements.items())),
                }
                for r in summary.reps
            ],
        }
    return out


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(verdicts(), indent=1) + "\n")
    print(f"wrote {GOLDEN}")
