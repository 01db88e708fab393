// The review page: what a judge needs to settle "I did 40, the system says 37". The evidence
// video with the skeleton over it, the repetitions on a timeline, the measurement the rules
// decided on, the selected repetition's faults and measurements, the versions, the verify
// result and the bundle, and (for reviewers) the decision form.
import { api, el, END_STATUSES, fail, fmtDate, fmtTime, header } from "./api.js";
import { Keypoints, Overlay } from "./overlay.js";
import { measurementPlot } from "./plot.js";
import { statusColour, statusLabel } from "./status.js";

const sessionId = decodeURIComponent(location.pathname.replace(/\/+$/, "").split("/").pop());
const SPEEDS = [0.25, 0.5, 1, 1.5, 2];
const VIEWS = ["unknown", "side", "front/back", "oblique"];

const page = {
  me: null,
  session: null,
  keypoints: null,
  overlay: null,
  plot: null,
  selected: -1,
  video: null,
  reps: [], // session repetitions with their start/end media times
};
// For the browser tests and the timing figures: what the page has done so far.
window.khfsmReview = { ready: false, readyMs: null };

function repMediaTimes(rep) {
  const kp = page.keypoints;
  const start = kp.mediaTimes[kp.indexOfFrame(rep.start_frame)];
  const endIndex = Math.min(kp.length - 1, kp.indexOfFrame(rep.end_frame));
  return { start, end: Math.max(kp.mediaTimes[endIndex], start) };
}

function viewName(view) {
  if (view === null || view === undefined) return "–";
  if (typeof view === "number") return VIEWS[view] || String(view);
  return String(view).replace("_", "/");
}

// -- the video, its controls and the timeline ------------------------------------------------

// play() is refused (a rejected promise) when a pause or a seek interrupts it: not an error.
function playVideo() {
  page.video.play().catch(() => {});
}

function seekToIndex(index, { play = false } = {}) {
  const kp = page.keypoints;
  const clamped = Math.max(0, Math.min(kp.length - 1, index));
  page.video.currentTime = kp.seekTime(clamped);
  if (play) playVideo();
}

function step(delta) {
  page.video.pause();
  const current = page.overlay.index < 0 ? 0 : page.overlay.index;
  seekToIndex(current + delta);
}

function selectRep(position, { play = true } = {}) {
  if (position < 0 || position >= page.reps.length) return;
  page.selected = position;
  const rep = page.reps[position];
  // Exactly the repetition's first frame (not a hair after it): what the timeline promises.
  page.video.currentTime = rep.mediaStart;
  if (play) playVideo();
  renderTimelineSelection();
  renderSelectedRep();
}

function currentRepPosition(mediaTime) {
  let found = -1;
  page.reps.forEach((rep, i) => {
    if (rep.mediaStart <= mediaTime + 0.0005) found = i;
  });
  return found;
}

function controls() {
  const video = page.video;
  const play = el("button", { type: "button", id: "play", onclick: () => (video.paused ? playVideo() : video.pause()) }, "▶ Play");
  video.addEventListener("play", () => (play.textContent = "❚❚ Pause"));
  video.addEventListener("pause", () => (play.textContent = "▶ Play"));
  const speed = el(
    "select",
    { id: "speed", title: "playback speed", onchange: (e) => (video.playbackRate = Number(e.target.value)) },
    SPEEDS.map((s) => el("option", { value: s, selected: s === 1 }, `${s}×`)),
  );
  return el(
    "div",
    { class: "controls" },
    play,
    el("button", { type: "button", id: "step-back", title: "previous frame (←)", onclick: () => step(-1) }, "◀ frame"),
    el("button", { type: "button", id: "step-forward", title: "next frame (→)", onclick: () => step(1) }, "frame ▶"),
    el("button", { type: "button", id: "prev-rep", title: "previous repetition (p)", onclick: () => selectRep(Math.max(0, page.selected - 1)) }, "‹ rep"),
    el("button", { type: "button", id: "next-rep", title: "next repetition (n)", onclick: () => selectRep(page.selected + 1) }, "rep ›"),
    speed,
    el("span", { class: "readout", id: "readout" }, "frame – · 0:00.00"),
  );
}

// Repetition index -> the reviewers' last decision on it ("uphold" / "overturn").
function rulings() {
  const last = new Map();
  for (const d of page.session.decisions || []) last.set(String(d.target), d.decision);
  return last;
}

function timeline() {
  const ruled = rulings();
  const duration = page.video.duration && Number.isFinite(page.video.duration)
    ? page.video.duration
    : page.keypoints.mediaTimes[page.keypoints.length - 1] || 1;
  const bar = el("div", { class: "timeline", id: "timeline" });
  page.reps.forEach((rep, i) => {
    const left = (100 * rep.mediaStart) / duration;
    const width = Math.max(0.4, (100 * (rep.mediaEnd - rep.mediaStart)) / duration);
    bar.append(
      el(
        "button",
        {
          type: "button",
          class: `rep${rep.status.some((c) => c > 0) ? " fault" : ""}${ruled.get(String(rep.index)) === "overturn" ? " overturned" : ""}`,
          style: `left:${left}%;width:${width}%;background:${statusColour(rep.status)}`,
          title: `repetition ${rep.index}: ${statusLabel(rep.status)} ${rep.message || ""} (${fmtTime(rep.start_time)}–${fmtTime(rep.end_time)})`
            + (ruled.has(String(rep.index)) ? ` · reviewer: ${ruled.get(String(rep.index))}` : ""),
          dataset: { rep: rep.index, start: rep.mediaStart.toFixed(4), status: statusLabel(rep.status) },
          onclick: () => selectRep(i),
        },
        String(rep.index),
      ),
    );
  });
  const end = page.session.end || {};
  if (end.status === -3) {
    // The violation that stopped the test, where it happened.
    const kp = page.keypoints;
    const at = end.frames ? kp.mediaTimes[Math.min(kp.length - 1, kp.indexOfFrame(end.frames - 1))] : duration;
    bar.append(el("div", { class: "rep", title: `stopped: ${end.message}`, style: `left:${(100 * at) / duration}%;width:6px;background:#c62f2f` }, "!"));
  }
  bar.append(el("div", { class: "cursor", id: "timeline-cursor" }));
  bar.dataset.duration = String(duration);
  return bar;
}

function legend() {
  const seen = new Map();
  for (const rep of page.reps) seen.set(statusLabel(rep.status), statusColour(rep.status));
  if ((page.session.end || {}).status === -3) seen.set("unallowed motion", "#c62f2f");
  const overturned = [...rulings().values()].includes("overturn");
  return el(
    "div",
    { class: "legend" },
    [...seen].map(([label, colour]) => el("span", {}, el("i", { style: `background:${colour}` }), label)),
    overturned ? el("span", {}, el("i", { class: "overturned-key" }), "overturned by a reviewer") : null,
    el("span", {}, "· click a repetition to play it; keys: space, ←/→ frame, n/p repetition"),
  );
}

function renderTimelineSelection() {
  document.querySelectorAll("#timeline .rep").forEach((node) => {
    node.classList.toggle("selected", Number(node.dataset.rep) === (page.reps[page.selected] || {}).index);
  });
}

function onFrame(index, mediaTime) {
  const kp = page.keypoints;
  const frame = index >= 0 ? kp.frames[index] : null;
  const readout = document.getElementById("readout");
  if (readout) {
    readout.textContent = `frame ${frame === null ? "–" : frame} · ${fmtTime(mediaTime)}`
      + (frame !== null ? ` · test ${fmtTime(frame / kp.fps)}` : "");
  }
  const cursor = document.getElementById("timeline-cursor");
  const bar = document.getElementById("timeline");
  if (cursor && bar) cursor.style.left = `${(100 * mediaTime) / Number(bar.dataset.duration)}%`;
  if (page.plot && frame !== null) page.plot.setCursor(frame / kp.fps);
  const position = currentRepPosition(mediaTime);
  if (position !== page.selected && !page.video.seeking && position >= 0) {
    page.selected = position;
    renderTimelineSelection();
    renderSelectedRep();
  }
}

// -- the side panels -------------------------------------------------------------------------

function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "–")]));
}

function countsPanel() {
  const s = page.session;
  const reviewed = s.reviewed ? `${s.reviewed_count} / ${s.reviewed_total}` : "–";
  return el(
    "div",
    { class: "panel", id: "counts-panel" },
    el("h2", {}, "Result"),
    el(
      "div",
      { class: "counts" },
      el("div", {}, el("div", { class: "big", id: "machine-count" }, `${s.count} / ${s.total}`), el("div", { class: "muted" }, "machine (valid / attempts)")),
      el("div", {}, el("div", { class: "big", id: "reviewed-count" }, reviewed), el("div", { class: "muted" }, s.reviewed ? "reviewed" : "not reviewed")),
    ),
    el("p", { class: "muted", id: "end-line" }, endLine()),
  );
}

function endLine() {
  const end = page.session.end;
  if (!end || end.status === null || end.status === undefined) return `state: ${page.session.state}`;
  return `ended ${end.status}: ${end.message || END_STATUSES[String(end.status)] || ""}`;
}

function renderSelectedRep() {
  const holder = document.getElementById("rep-panel");
  if (!holder) return;
  const rep = page.reps[page.selected];
  if (!rep) {
    holder.replaceChildren(el("h2", {}, "Repetition"), el("p", { class: "muted" }, "Select a repetition on the timeline."));
    return;
  }
  const rows = Object.entries(rep.measurements || {}).map(([key, value]) =>
    el("tr", {}, el("td", {}, key), el("td", {}, key === "camera_view" ? viewName(value) : String(value))),
  );
  holder.replaceChildren(
    el("h2", {}, `Repetition ${rep.index}`),
    el(
      "p",
      { id: "rep-verdict" },
      el("span", { class: "badge", style: `background:${statusColour(rep.status)};color:#fff` }, statusLabel(rep.status)),
      " ",
      rep.message || (rep.status.length === 1 && rep.status[0] === 0 ? "valid repetition" : ""),
    ),
    el("p", { class: "muted" }, `frames ${rep.start_frame}–${rep.end_frame} · ${fmtTime(rep.start_time)}–${fmtTime(rep.end_time)}`),
    el("table", { class: "kv", id: "rep-measurements" }, el("tbody", {}, rows)),
  );
}

function readinessText(readiness) {
  if (!readiness) return "–";
  if (typeof readiness !== "object") return String(readiness);
  const parts = [];
  if ("in_position" in readiness) parts.push(readiness.in_position ? "in the start position" : "not in the start position");
  if (readiness.missing && readiness.missing.length) parts.push(readiness.missing.join("; "));
  if (readiness.out_of_view && readiness.out_of_view.length) parts.push(`out of view: ${readiness.out_of_view.join(", ")}`);
  if (readiness.view) parts.push(`view ${viewName(readiness.view)}`);
  return parts.join(" · ") || JSON.stringify(readiness);
}

function sessionPanel() {
  const s = page.session;
  const models = Object.entries(s.model_versions || {}).map(([k, v]) => `${k} ${String(v).slice(0, 12)}`);
  return el(
    "div",
    { class: "panel" },
    el("h2", {}, "Session"),
    facts([
      ["task", `${s.task} (level ${s.level})`],
      ["lane", s.capture_id],
      ["candidate", s.candidate || "–"],
      ["started", fmtDate(s.started_at)],
      ["camera view", viewName(s.camera_view)],
      ["readiness", readinessText(s.readiness)],
      ["rules", s.rules_version],
      ["models", models.length ? el("span", {}, models.join(", ")) : "–"],
      ["fps", s.fps],
      ["video sha256", s.end && s.end.video_sha256 ? s.end.video_sha256.slice(0, 16) + "…" : "–"],
    ]),
  );
}

function evidencePanel() {
  const result = el("p", { id: "verify-result", class: "muted" }, "checking…");
  const run = async () => {
    result.className = "muted";
    result.textContent = "checking…";
    try {
      const v = await api(`/api/v1/sessions/${sessionId}/verify`);
      if (v.intact) {
        result.className = "ok";
        result.textContent = "intact: hash chain unbroken, replay identical";
      } else {
        result.className = "error";
        const d = v.replay && v.replay.divergence;
        result.textContent = !v.chain.ok
          ? `altered: ${v.chain.detail}`
          : `replay diverges at event ${d.seq}: expected ${JSON.stringify(d.expected)}, got ${JSON.stringify(d.got)}`;
      }
      result.dataset.intact = String(v.intact);
    } catch (error) {
      result.className = "error";
      result.textContent = `verify failed: ${error.message}`;
    }
  };
  const panel = el(
    "div",
    { class: "panel" },
    el("h2", {}, "Evidence"),
    result,
    el("button", { type: "button", id: "verify", onclick: run }, "Verify again"),
    " ",
    el("a", { href: page.session.bundle_url, id: "bundle", download: `khfsm-${sessionId}.zip` }, "Download bundle (zip)"),
  );
  run();
  return panel;
}

function decisionsList() {
  const decisions = page.session.decisions || [];
  return el(
    "div",
    { class: "panel", id: "decisions" },
    el("h2", {}, "Decisions"),
    decisions.length
      ? el(
          "table",
          { class: "kv" },
          el(
            "tbody",
            {},
            decisions.map((d) =>
              el("tr", {}, el("td", {}, `${d.target === "verdict" ? "verdict" : "rep " + d.target}: ${d.decision}`), el("td", {}, `${d.reviewer}, ${fmtDate(d.at)}`)),
            ),
          ),
        )
      : el("p", { class: "muted" }, "none yet"),
  );
}

function decisionForm() {
  const message = el("p", { id: "decision-message" });
  const form = el(
    "form",
    { class: "panel decision", id: "decision-form" },
    el("h2", {}, "Your decision"),
    el("label", { for: "decision-target" }, "On"),
    el(
      "select",
      { id: "decision-target", name: "target" },
      el("option", { value: "verdict" }, "the verdict (the whole result)"),
      page.reps.map((rep) => el("option", { value: String(rep.index) }, `repetition ${rep.index} (${statusLabel(rep.status)})`)),
    ),
    el("label", { for: "decision-decision" }, "Decision"),
    el("select", { id: "decision-decision", name: "decision" }, el("option", { value: "uphold" }, "uphold"), el("option", { value: "overturn" }, "overturn")),
    el("label", { for: "decision-reason" }, "Reason"),
    el("textarea", { id: "decision-reason", name: "reason", rows: 2, required: true }),
    el("button", { class: "primary", type: "submit", id: "decision-save" }, "Save decision"),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const raw = form.elements.target.value;
    try {
      await api(`/api/v1/sessions/${sessionId}/decisions`, {
        method: "POST",
        body: { target: raw === "verdict" ? "verdict" : Number(raw), decision: form.elements.decision.value, reason: form.elements.reason.value },
      });
      page.session = await api(`/api/v1/sessions/${sessionId}`);
      document.getElementById("counts-panel").replaceWith(countsPanel());
      document.getElementById("decisions").replaceWith(decisionsList());
      document.getElementById("timeline-holder").replaceChildren(timeline(), legend());
      renderTimelineSelection();
      form.elements.reason.value = "";
      message.className = "ok";
      message.textContent = "saved";
    } catch (error) {
      message.className = "error";
      message.textContent = error.message;
    }
  });
  return form;
}

function isReviewer(role) {
  return role === "reviewer" || role === "admin";
}

// -- the measurement plot --------------------------------------------------------------------

async function loadMeasurement(holder) {
  try {
    const series = await api(`/api/v1/ui/sessions/${sessionId}/measurement`);
    if (!series.available) {
      holder.replaceChildren(el("p", { class: "muted" }, series.reason));
      return;
    }
    const target = el("div", { id: "plot" });
    holder.replaceChildren(
      el("h2", {}, `${series.name} · ${series.rules_version} level ${series.level}`),
      target,
      el("p", { class: "muted", id: "plot-description" }, series.description),
    );
    const kp = page.keypoints;
    page.plot = measurementPlot(target, series, {
      width: holder.clientWidth - 20,
      onSeek: (seconds) => {
        page.video.pause();
        seekToIndex(kp.indexOfFrame(Math.round(seconds * kp.fps)));
      },
    });
    new ResizeObserver(() => page.plot.resize(holder.clientWidth - 20)).observe(holder);
    holder.dataset.loaded = "true";
  } catch (error) {
    holder.replaceChildren(el("p", { class: "error" }, `measurement: ${error.message}`));
  }
}

// -- the keyboard ----------------------------------------------------------------------------

function keys(event) {
  const tag = (event.target.tagName || "").toLowerCase();
  if (["input", "textarea", "select"].includes(tag) || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === " ") {
    event.preventDefault();
    if (page.video.paused) playVideo();
    else page.video.pause();
  } else if (event.key === "ArrowLeft") {
    event.preventDefault();
    step(-1);
  } else if (event.key === "ArrowRight") {
    event.preventDefault();
    step(1);
  } else if (event.key === "n") {
    selectRep(page.selected + 1);
  } else if (event.key === "p") {
    selectRep(Math.max(0, page.selected - 1));
  }
}

// -- the page --------------------------------------------------------------------------------

// A session without a recording (a face check, or a video lost with its disk): the facts,
// the result, verify and the bundle, without the player.
function noVideo(session) {
  const face = session.face
    ? facts(Object.entries(session.face).map(([k, v]) => [k.replace("_", " "), String(v ?? "–")]))
    : null;
  document.getElementById("main").replaceChildren(
    el(
      "div",
      { class: "review" },
      el(
        "div",
        {},
        el("h1", {}, `${session.task} · lane ${session.capture_id} · ${fmtDate(session.started_at)}`),
        el("p", { class: "panel muted", id: "no-video" }, "This session has no recorded video on this server."),
        face ? el("div", { class: "panel" }, el("h2", {}, "Face check"), face) : null,
      ),
      el("div", { class: "side" }, countsPanel(), decisionsList(), evidencePanel(), sessionPanel()),
    ),
  );
  window.khfsmReview = { ready: true, readyMs: performance.now() };
}

function once(target, event) {
  return new Promise((resolve) => target.addEventListener(event, resolve, { once: true }));
}

async function main() {
  // Everything at once: who is asking, the summary, and the keypoints (the largest answer);
  // the video starts loading as soon as the summary names it.
  const marks = {};
  const mePromise = header("sessions");
  const keypointsPromise = api(`/api/v1/sessions/${sessionId}/keypoints`).then((data) => {
    marks.keypointsMs = performance.now();
    return data;
  });
  const session = await api(`/api/v1/sessions/${sessionId}`);
  marks.summaryMs = performance.now();
  page.me = await mePromise;
  page.session = session;
  document.title = `${session.task} lane ${session.capture_id} · khfsm`;

  if (!session.video_url) {
    keypointsPromise.catch(() => {}); // nothing to draw on
    noVideo(session);
    return;
  }
  const video = el("video", { id: "video", src: session.video_url, preload: "auto", muted: true, playsinline: true });
  video.muted = true;
  const metadata = once(video, "loadedmetadata");
  const playable = once(video, "canplay");
  video.addEventListener("error", () => fail(new Error(`the evidence video could not be played (${session.video_url})`)));
  const canvas = el("canvas", { id: "overlay" });
  page.video = video;
  const timelineHolder = el("div", { id: "timeline-holder" });
  const plotHolder = el("div", { class: "panel", id: "plot-panel" }, el("p", { class: "muted" }, "measurement loading…"));
  page.reps = session.repetitions; // media times follow with the keypoints
  const side = el(
    "div",
    { class: "side" },
    countsPanel(),
    el("div", { class: "panel", id: "rep-panel" }),
    isReviewer(page.me.role) ? decisionForm() : null,
    decisionsList(),
    evidencePanel(),
    sessionPanel(),
  );
  const main = document.getElementById("main");
  main.replaceChildren(
    el(
      "div",
      { class: "review" },
      el(
        "div",
        {},
        el("h1", {}, `${session.task} · lane ${session.capture_id}${session.candidate ? " · " + session.candidate : ""} · ${fmtDate(session.started_at)}`),
        el("div", { class: "stage" }, video, canvas),
        controls(),
        timelineHolder,
        plotHolder,
      ),
      side,
    ),
  );

  page.keypoints = new Keypoints(await keypointsPromise);
  page.reps = session.repetitions.map((rep) => {
    const { start, end } = repMediaTimes(rep);
    return { ...rep, mediaStart: start, mediaEnd: end };
  });
  renderSelectedRep();
  page.overlay = new Overlay(video, canvas, page.keypoints, onFrame);
  document.addEventListener("keydown", keys);
  loadMeasurement(plotHolder);
  await metadata;
  timelineHolder.replaceChildren(timeline(), legend());
  renderTimelineSelection();
  await playable;
  marks.canplayMs = performance.now();
  page.overlay.show(video.currentTime);
  window.khfsmReview = { ready: true, readyMs: performance.now(), ...marks };
  main.dataset.ready = "true";
}

main().catch(fail);
