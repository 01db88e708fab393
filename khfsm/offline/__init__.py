"""Offline assessment of video files (what `khfsm assess`, the tests and benchmarks use).

One concern per module: `probe` (what a video file declares), `sampling` (its assessed frames
at the assessment rate), `keypoints` (running pose over them, and the array file of the
result), `cache` (reusing an earlier extraction) and `assess` (a whole session over a file,
stored). The session itself is run by the domain's one driver, `khfsm.domain.run`.
"""
