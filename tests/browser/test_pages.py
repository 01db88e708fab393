"""The review and site pages in Debian's headless Chromium, against a real server holding a
push-up session assessed live from a real clip.

Each test logs in through the login page as a reviewer (rita) or an operator (otto). The
review page exposes what it draws (`window.khfsmOverlay`: the assessed frame and its
landmarks) and the board what it received (`window.khfsmBoard`), so the tests compare the
page with the stored data rather than with pixels alone. Screenshots are saved as artifacts
(see conftest). Timings are printed, never asserted.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import httpx
import pytest

from tests.browser.conftest import PASSWORD, Site, log_in, run_session, shoot, wait_for

pytestmark = [pytest.mark.video, pytest.mark.slow]


def api(site: Site, user: str, path: str) -> Any:
    with httpx.Client(base_url=site.url, timeout=30) as client:
        login = client.post("/api/v1/login", json={"username": user, "password": PASSWORD})
        assert login.status_code == 200, login.text
        response = client.get(path)
        assert response.status_code == 200, response.text
        return response.json()


def by_css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def open_review(driver: Any, site: Site) -> float:
    """From the session list, click the session; milliseconds from navigation to a page
    whose video can play with its overlay drawn (the page's own clock)."""
    wait_for(driver, f"document.querySelector('tr[data-session=\"{site.session_id}\"]')")
    by_css(driver, f'tr[data-session="{site.session_id}"] td:nth-child(2)').click()
    wait_for(driver, "window.khfsmReview && window.khfsmReview.ready")
    ready_ms: float = driver.execute_script("return window.khfsmReview.readyMs")
    return ready_ms


def test_login_list_and_filter(site: Site, browser: Any) -> None:
    log_in(browser, site, "otto")
    wait_for(browser, f"document.querySelector('tr[data-session=\"{site.session_id}\"]')")
    row = by_css(browser, f'tr[data-session="{site.session_id}"]')
    machine = by_css(browser, f'tr[data-session="{site.session_id}"] td.machine').text
    stored = api(site, "otto", f"/api/v1/sessions/{site.session_id}")
    assert machine == f"{stored['count']} / {stored['total']}"
    assert "not reviewed" in row.text or "/" in row.text

    from selenium.webdriver.support.ui import Select

    # A task with no session: the list empties; back to push-ups: the session is there again.
    Select(by_css(browser, "#filter-task")).select_by_value("situp")
    by_css(browser, "#apply-filters").click()
    wait_for(browser, "location.search.includes('task=situp')")
    wait_for(browser, "document.querySelectorAll('#sessions tbody tr').length === 0")
    assert "0 sessions" in by_css(browser, "#page-info").text
    Select(by_css(browser, "#filter-task")).select_by_value("pushup")
    by_css(browser, "#filter-lane").send_keys("1")
    by_css(browser, "#apply-filters").click()
    wait_for(browser, f"document.querySelector('tr[data-session=\"{site.session_id}\"]')")
    assert "task=pushup" in browser.current_url and "lane=1" in browser.current_url
    shoot(browser, site, "session-list")


def test_overlay_matches_stored_keypoints_at_a_sought_frame(site: Site, browser: Any) -> None:
    log_in(browser, site, "rita")
    ready_ms = open_review(browser, site)
    print(f"\nreview page ready (video playable, overlay drawn) {ready_ms:.0f} ms after the click")
    stored = api(site, "rita", f"/api/v1/sessions/{site.session_id}/keypoints")
    people = [i for i, points in enumerate(stored["landmarks"]) if points]
    assert len(people) > 50, "the clip's examinee was seen on too few frames"
    for index in (people[len(people) // 3], people[(2 * len(people)) // 3]):
        pts = stored["pts"][index] if stored.get("pts") else None
        media_time = pts if pts is not None else stored["times"][index]
        browser.execute_script(
            "const v = document.getElementById('video'); v.pause(); v.currentTime = arguments[0];",
            media_time + 0.0005,
        )
        frame = stored["frames"][index]
        wait_for(browser, f"window.khfsmOverlay && window.khfsmOverlay.frame === {frame}")
        drawn = browser.execute_script("return window.khfsmOverlay")
        assert drawn["landmarks"] == stored["landmarks"][index]
        assert by_css(browser, "#overlay").get_attribute("data-frame") == str(frame)
        assert f"frame {frame} " in by_css(browser, "#readout").text
        # The canvas really has the skeleton: a visible landmark's pixel is painted.
        painted = browser.execute_script(
            """
            const c = document.getElementById('overlay'), v = document.getElementById('video');
            const p = window.khfsmOverlay.landmarks.find((q) => q[2] >= 0.5);
            const s = Math.min(v.clientWidth / v.videoWidth, v.clientHeight / v.videoHeight);
            const x = (v.clientWidth - v.videoWidth * s) / 2 + p[0] * v.videoWidth * s;
            const y = (v.clientHeight - v.videoHeight * s) / 2 + p[1] * v.videoHeight * s;
            const r = window.devicePixelRatio || 1;
            return c.getContext('2d').getImageData(Math.round(x * r), Math.round(y * r), 1, 1)
                .data[3];
            """
        )
        assert painted > 0
    # One frame forward with the arrow key: the next assessed frame is drawn.
    from selenium.webdriver.common.keys import Keys

    by_css(browser, "body").send_keys(Keys.ARROW_RIGHT)
    wait_for(browser, f"window.khfsmOverlay.frame === {stored['frames'][index + 1]}")


def test_third_repetition_click_seeks_to_its_start_and_plays(site: Site, browser: Any) -> None:
    log_in(browser, site, "rita")
    open_review(browser, site)
    session = api(site, "rita", f"/api/v1/sessions/{site.session_id}")
    stored = api(site, "rita", f"/api/v1/sessions/{site.session_id}/keypoints")
    assert len(session["repetitions"]) >= 3, "the clip has 4 push-ups"
    third = session["repetitions"][2]
    index = stored["frames"].index(third["start_frame"])
    pts = stored["pts"][index] if stored.get("pts") else None
    start = pts if pts is not None else stored["times"][index]
    wait_for(browser, "document.querySelector('#timeline .rep[data-rep=\"3\"]')")
    seeked_to = browser.execute_script(
        "document.querySelector('#timeline .rep[data-rep=\"3\"]').click();"
        "return document.getElementById('video').currentTime;"
    )
    assert seeked_to == pytest.approx(start, abs=0.002)
    wait_for(browser, "!document.getElementById('video').paused")
    wait_for(browser, f"document.getElementById('video').currentTime > {start + 0.3}")
    assert "repetition 3" in by_css(browser, "#rep-panel").text.lower()
    wait_for(browser, "document.querySelector('#plot-panel').dataset.loaded === 'true'")
    time.sleep(0.4)
    shoot(browser, site, "review-playing-rep3")

    # The keyboard: space pauses, n goes to the next repetition's start (and plays it).
    from selenium.webdriver.common.keys import Keys

    body = by_css(browser, "body")
    body.send_keys(Keys.SPACE)
    wait_for(browser, "document.getElementById('video').paused")
    if len(session["repetitions"]) >= 4:
        fourth = session["repetitions"][3]
        index = stored["frames"].index(fourth["start_frame"])
        pts = stored["pts"][index] if stored.get("pts") else None
        start4 = pts if pts is not None else stored["times"][index]
        body.send_keys("n")
        wait_for(browser, "!document.getElementById('video').paused")
        assert "repetition 4" in by_css(browser, "#rep-panel").text.lower()
        now = browser.execute_script("return document.getElementById('video').currentTime")
        assert start4 - 0.01 <= now < start4 + 3.0
        body.send_keys("p")
        wait_for(browser, "document.querySelector('#rep-panel h2').textContent === 'Repetition 3'")


def test_reviewer_records_a_decision_and_sees_both_counts(site: Site, browser: Any) -> None:
    from selenium.webdriver.support.ui import Select

    log_in(browser, site, "rita")
    open_review(browser, site)
    machine = by_css(browser, "#machine-count").text
    Select(by_css(browser, "#decision-target")).select_by_value("2")
    Select(by_css(browser, "#decision-decision")).select_by_value("overturn")
    by_css(browser, "#decision-reason").send_keys("hips sagged at the bottom (video 0:10)")
    by_css(browser, "#decision-save").click()
    wait_for(browser, "document.getElementById('decision-message').textContent === 'saved'")
    session = api(site, "rita", f"/api/v1/sessions/{site.session_id}")
    assert session["reviewed"] is True
    reviewed = f"{session['reviewed_count']} / {session['reviewed_total']}"
    assert (
        by_css(browser, "#machine-count").text
        == machine
        == (f"{session['count']} / {session['total']}")
    )
    assert by_css(browser, "#reviewed-count").text == reviewed
    assert session["reviewed_count"] == session["count"] - 1  # a valid rep overturned
    assert "rita" in by_css(browser, "#decisions").text
    shoot(browser, site, "review-after-decision")


def test_operator_sees_no_decision_form(site: Site, browser: Any) -> None:
    log_in(browser, site, "otto")
    open_review(browser, site)
    assert browser.execute_script("return document.getElementById('decision-form')") is None
    status = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({target: 'verdict', decision: 'uphold', reason: 'x'})})
          .then((r) => done(r.status));
        """,
        f"/api/v1/sessions/{site.session_id}/decisions",
    )
    assert status == 403
    # The refusal is in the console as a failed request (reading the log empties it).
    refused = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert all("403" in message or "/api/v1/me" in message for message in refused), refused


def test_board_shows_a_running_lanes_count_rising(site: Site, browser: Any) -> None:
    log_in(browser, site, "otto", "/ui/board")
    wait_for(browser, "window.khfsmBoard && window.khfsmBoard.updates > 0")
    finished: dict[str, str] = {}

    def lane() -> None:
        finished["session"] = anyio.run(run_session, site.server, 2, 40.0)

    runner = threading.Thread(target=lane, name="board lane")
    runner.start()
    counts: list[int] = []
    states: set[str] = set()
    deadline = time.monotonic() + 90
    shot = False
    while runner.is_alive() and time.monotonic() < deadline:
        card = browser.execute_script(
            "return (window.khfsmBoard.lanes || []).find((l) => l.capture_id === 2) || null"
        )
        if card is not None and card["state"] == "running":
            states.add(card["state"])
            if not counts or card["count"] != counts[-1]:
                counts.append(card["count"])
            if card["count"] >= 2 and not shot:
                shoot(browser, site, "board-running")
                shot = True
        time.sleep(0.1)
    runner.join(timeout=60)
    assert "running" in states
    assert counts == sorted(counts) and counts[-1] > counts[0], counts
    latencies = browser.execute_script("return window.khfsmBoard.latenciesMs")
    assert latencies
    ordered = sorted(latencies)
    print(
        f"\nboard: counts seen {counts}; push -> browser latency ms: "
        f"median {ordered[len(ordered) // 2]:.0f}, max {ordered[-1]:.0f} (n={len(ordered)})"
    )
    text = by_css(browser, '.lane[data-capture="2"]').text
    assert "lane 2" in text


@pytest.mark.parametrize("rate", [0.25, 2.0])
def test_overlay_follows_the_presented_frames_while_playing(
    site: Site, browser: Any, rate: float
) -> None:
    """At 0.25x and 2x, every drawn skeleton is the assessed frame due at the media time of
    the video frame on screen (computed here independently from the stored keypoints)."""
    import bisect

    log_in(browser, site, "otto")
    open_review(browser, site)
    stored = api(site, "otto", f"/api/v1/sessions/{site.session_id}/keypoints")
    media = [
        pts if pts is not None else time_
        for pts, time_ in zip(
            stored.get("pts") or [None] * len(stored["times"]), stored["times"], strict=True
        )
    ]
    browser.execute_script(
        """
        const v = document.getElementById('video');
        window.samples = [];
        const take = (now, meta) => {
          window.samples.push([meta.mediaTime, window.khfsmOverlay.frame]);
          v.requestVideoFrameCallback(take);
        };
        v.requestVideoFrameCallback(take);
        v.currentTime = 5.0; v.playbackRate = arguments[0]; v.play();
        """,
        rate,
    )
    time.sleep(2.0)
    samples = browser.execute_script(
        "document.getElementById('video').pause(); return window.samples"
    )
    assert len(samples) >= 5, samples
    for media_time, frame in samples[1:]:  # the first may precede the seek's frame
        index = bisect.bisect_right(media, media_time + 0.0005) - 1
        assert frame == stored["frames"][index], (media_time, frame)
    assert len({frame for _, frame in samples}) >= 4 * rate
