"""The web pages of `khfsm serve`: the session list, the review page and the live site board.

Open ``http://SERVER:PORT/`` (it redirects to ``/ui/``) and log in with a user made by
``khfsm users add``. The pages are plain HTML, CSS and JavaScript modules in `static/`,
served by the server itself with the one library they use (uPlot, vendored with its licence
in `static/vendor/`, see `static/vendor/VENDORED.md`): nothing is loaded from the internet.

- ``/ui/`` sessions: filters (dates, lane, task, outcome, reviewed or not, candidate),
  sorting by a column's header, paging; the machine's and the reviewed result per row.
- ``/ui/sessions/{id}`` review: the evidence video with the stored skeleton drawn over it on
  the very frame the browser shows (`requestVideoFrameCallback` and the frame's media time,
  matched to each assessed frame's presentation time); frame index and time; 0.25×–2×; the
  repetitions as a timeline coloured by status (a click plays one from its start); the
  measurement the rules decided on, with the level's thresholds and each repetition's
  judged value (`khfsm.web.measurement`); the selected repetition's faults and
  measurements; camera view, readiness, versions; verify and the bundle; for reviewers the
  decision form. Keys: space play/pause, ←/→ one assessed frame, n/p next/previous
  repetition.
- ``/ui/board`` site board: every lane, live over server-sent events (`khfsm.web.board`).

Data comes from the JSON API (`khfsm.api`, under ``/api/v1``) and two routes of this
package, ``/api/v1/ui/sessions/{id}/measurement`` and ``/api/v1/ui/board/stream``
(`khfsm.web.router`), all behind the same login.
"""
