"""The sessions API over real HTTP against two sessions assessed by the live pipeline:
the list with its filters and paging, one session, its events, keypoints and video."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api.conftest import DURATION_S, FPS, STOPPED_LANE, TIME_UP_LANE, ApiServer


@pytest.fixture
def operator(api_server: ApiServer) -> Any:
    with api_server.client("operator") as client:
        yield client


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_list_with_every_filter(api_server: ApiServer, operator: httpx.Client) -> None:
    time_up, stopped = api_server.time_up["session"], api_server.stopped["session"]
    body = operator.get("/sessions").json()
    assert body["total"] == 2 and body["page"] == 1 and body["page_size"] == 50
    assert [item["id"] for item in body["items"]] == [stopped, time_up]  # newest first
    row = body["items"][1]
    assert row["capture_id"] == TIME_UP_LANE and row["task"] == "pushup"
    assert row["state"] == "stopped" and row["end_status"] == -2
    assert row["end_message"] == "time is up" and row["candidate"] is None
    assert (
        row["count"] == api_server.time_up["count"] and row["total"] == api_server.time_up["total"]
    )
    assert row["rules_version"].startswith("pushup")
    assert row["ended_at"] > row["started_at"]
    assert set(row) >= {"reviewed", "reviewed_count", "reviewed_total"}

    assert ids(operator.get("/sessions", params={"lane": TIME_UP_LANE})) == [time_up]
    assert ids(operator.get("/sessions", params={"lane": STOPPED_LANE})) == [stopped]
    assert ids(operator.get("/sessions", params={"lane": 99})) == []
    assert ids(operator.get("/sessions", params={"task": "situp"})) == []
    assert len(ids(operator.get("/sessions", params={"task": "pushup"}))) == 2
    assert ids(operator.get("/sessions", params={"outcome": "-2"})) == [time_up]
    assert ids(operator.get("/sessions", params={"outcome": "time_up"})) == [time_up]
    assert ids(operator.get("/sessions", params={"outcome": "-1"})) == [stopped]
    assert len(ids(operator.get("/sessions", params={"outcome": "stopped"}))) == 2  # the state
    assert ids(operator.get("/sessions", params={"outcome": "running"})) == []
    # The tablets send no candidate id: the filter matches nothing rather than everything.
    assert ids(operator.get("/sessions", params={"candidate": "A-17"})) == []

    now = datetime.now(UTC)
    today, tomorrow = now.astimezone().date(), (now.astimezone() + timedelta(days=1)).date()
    assert len(ids(operator.get("/sessions", params={"date_from": today.isoformat()}))) == 2
    assert ids(operator.get("/sessions", params={"date_from": tomorrow.isoformat()})) == []
    assert len(ids(operator.get("/sessions", params={"date_to": today.isoformat()}))) == 2
    before = (now - timedelta(hours=2)).isoformat()
    assert ids(operator.get("/sessions", params={"date_to": before})) == []
    between = {"date_from": row["started_at"], "date_to": body["items"][0]["started_at"]}
    assert ids(operator.get("/sessions", params=between)) == [time_up]

    for wrong in ({"outcome": "exploded"}, {"sort": "colour"}, {"date_from": "yesterday"}):
        response = operator.get("/sessions", params=wrong)
        assert response.status_code == 422, wrong
        assert isinstance(response.json()["detail"], str)
    assert operator.get("/sessions", params={"page_size": 0}).status_code == 422


def test_paging_and_order(api_server: ApiServer, operator: httpx.Client) -> None:
    time_up, stopped = api_server.time_up["session"], api_server.stopped["session"]
    first = operator.get("/sessions", params={"page_size": 1}).json()
    second = operator.get("/sessions", params={"page_size": 1, "page": 2}).json()
    third = operator.get("/sessions", params={"page_size": 1, "page": 3}).json()
    assert first["total"] == second["total"] == third["total"] == 2
    assert [i["id"] for i in first["items"] + second["items"]] == [stopped, time_up]
    assert third["items"] == []
    assert ids(operator.get("/sessions", params={"sort": "started_at"})) == [time_up, stopped]
    assert ids(operator.get("/sessions", params={"sort": "capture_id"})) == [time_up, stopped]
    assert ids(operator.get("/sessions", params={"sort": "-capture_id"})) == [stopped, time_up]


def test_one_session(api_server: ApiServer, operator: httpx.Client) -> None:
    session = api_server.time_up["session"]
    detail = operator.get(f"/sessions/{session}").json()
    assert detail["id"] == session and detail["level"] == 5 and detail["fps"] == FPS
    assert detail["duration"] == DURATION_S
    assert detail["model_versions"]["rules"] == detail["rules_version"]
    assert detail["model_versions"]["models"]  # model file -> sha256
    assert detail["camera_view"] in {"side", "front", "unknown"}
    assert [item["moment"] for item in detail["readiness"]] == ["prepare", "start"]
    reps = detail["repetitions"]
    assert len(reps) == api_server.time_up["total"] >= 1
    assert [rep["index"] for rep in reps] == list(range(1, len(reps) + 1))
    for rep in reps:
        assert rep["start_frame"] < rep["end_frame"]
        assert rep["start_time"] < rep["end_time"]
        assert rep["measurements"]  # the numbers that decided it
        assert (rep["fault_code"] is None) == (rep["status"] == [0])
        assert rep["message"]
    end = detail["end"]
    assert end["status"] == -2 and end["frames"] == DURATION_S * FPS
    assert len(end["video_sha256"]) == 64
    assert detail["video_url"] == f"/api/v1/sessions/{session}/video"
    assert detail["bundle_url"] == f"/api/v1/sessions/{session}/bundle"
    assert isinstance(detail["decisions"], list)
    missing = operator.get("/sessions/no-such-session")
    assert missing.status_code == 404 and "no session" in missing.json()["detail"]


def test_events_paged(api_server: ApiServer, operator: httpx.Client) -> None:
    session = api_server.time_up["session"]
    seen: list[dict[str, Any]] = []
    after = -1
    pages = 0
    while True:
        body = operator.get(
            f"/sessions/{session}/events", params={"after": after, "limit": 50}
        ).json()
        seen.extend(body["items"])
        pages += 1
        if body["next"] is None:
            break
        after = body["next"]
    assert [item["seq"] for item in seen] == list(range(len(seen)))
    assert pages == -(-len(seen) // 50)
    assert seen[0]["type"] == "SessionPrepared" and seen[0]["task"] == "pushup"
    frames = [item for item in seen if item["type"] == "FrameObserved"]
    assert len(frames) == DURATION_S * FPS and all("person" in item for item in frames)
    assert "SessionEnded" in [item["type"] for item in seen]
    assert all(len(item["hash"]) == 64 and item["recorded_at"].endswith("+00:00") for item in seen)
    assert operator.get("/sessions/nope/events").status_code == 404


def test_keypoints_compact(api_server: ApiServer, operator: httpx.Client) -> None:
    session = api_server.time_up["session"]
    body = operator.get(f"/sessions/{session}/keypoints").json()
    frames = DURATION_S * FPS
    assert body["fps"] == FPS and body["width"] > 0 and body["height"] > 0
    assert body["frames"] == list(range(frames))
    assert body["times"][:3] == [0.0, 0.1, 0.2] and len(body["times"]) == frames
    assert len(body["pts"]) == frames
    drawn = [frame for frame in body["landmarks"] if frame is not None]
    assert len(drawn) > frames // 2  # somebody is doing push-ups in most frames
    for frame in drawn:
        assert len(frame) == 33 and all(len(point) == 3 for point in frame)
    xs = [point[0] for frame in drawn for point in frame]
    assert 0.0 <= sorted(xs)[len(xs) // 2] <= 1.0  # normalized, not pixels
    assert all(round(x, 4) == x for x in xs)


def test_video_with_range_requests(api_server: ApiServer, operator: httpx.Client) -> None:
    session = api_server.time_up["session"]
    data = (api_server.media / f"video/api_{TIME_UP_LANE}.mp4").read_bytes()
    size = len(data)
    path = f"/sessions/{session}/video"

    whole = operator.get(path)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "video/mp4"

    first = operator.get(path, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206 and first.content == data[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{size}"
    assert first.headers["content-length"] == "100"

    middle = operator.get(path, headers={"Range": f"bytes={size // 2}-{size // 2 + 4095}"})
    assert middle.status_code == 206 and middle.content == data[size // 2 : size // 2 + 4096]
    assert middle.headers["content-range"] == f"bytes {size // 2}-{size // 2 + 4095}/{size}"

    suffix = operator.get(path, headers={"Range": "bytes=-500"})
    assert suffix.status_code == 206 and suffix.content == data[-500:]
    assert suffix.headers["content-range"] == f"bytes {size - 500}-{size - 1}/{size}"

    open_ended = operator.get(path, headers={"Range": f"bytes={size - 10}-"})
    assert open_ended.status_code == 206 and open_ended.content == data[-10:]

    past = operator.get(path, headers={"Range": f"bytes={size}-{size + 100}"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{size}"
