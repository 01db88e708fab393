"""Exercise rule modules, one per exercise, and their registry.

Installed as `khfsm.exercises` (pyproject.toml maps this folder there); the modules import
each other relatively, so they do not depend on where the folder is installed.

Each module exports `EXERCISE` (the `khfsm.domain.exercise.Exercise` interface) and keeps in
one place its rules version, its thresholds per Level 1-5 (`thresholds(level)`; 5 is the
standard exam), its 3XY fault codes with operator messages (`FAULTS`), its unallowed-motion
rules (module docstring) and the measurements behind every verdict. They are found through
the `khfsm.exercises` entry-point group (see pyproject.toml), so a site adds an exercise by
shipping a package with its own entry point, without editing the engine.

Each module's class also declares its codes (`CODE_DIGIT`, the X of its 3XY faults, and
`PUSH_CODE`, the number prefixing its pushes): pushup 1/2222, situp 2/3333, pullup 3/4444,
squat 4/5555, armhang 6/6666.

| task    | counted when                 | faults                                        |
|---------|------------------------------|-----------------------------------------------|
| pushup  | back at lockout              | 311 not low, 312 not locked out, 313 body line |
| situp   | at the top                   | 321 not up, 322 not down, 323 hands, 324 knees |
| pullup  | chin over the bar            | 331 chin, 332 not from hang, 333 kipping       |
| squat   | standing again               | 341 not deep, 342 not stood up, 343 leaning    |
| armhang | each whole second of hold    | 361 chin below bar, 362 arms straightened      |

`khfsm.exercises.common` holds what they share: body geometry, the repetition cycle with hysteresis,
timers and the unallowed-motion verdict.
"""
