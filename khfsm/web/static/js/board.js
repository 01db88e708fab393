// The live site board for the proctors' room: every lane, updated from the server-sent event
// stream /api/v1/ui/board/stream (EventSource reconnects by itself after a drop).
import { el, END_STATUSES, fail, header, loginUrl } from "./api.js";
import { statusLabel } from "./status.js";

// For the browser tests and the latency figure: the last board and how late each push was.
window.khfsmBoard = { updates: 0, lanes: [], latenciesMs: [] };
const seenPushes = new Set();

function timeLeft(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const m = Math.floor(seconds / 60);
  const s = Math.floor(seconds - 60 * m);
  return `${m}:${String(s).padStart(2, "0")}`;
}

function lastPush(push) {
  if (!push) return "no push yet";
  const when = push.at_ms ? new Date(push.at_ms).toLocaleTimeString(undefined, { hour12: false }) : "";
  if (push.final) return `end ${push.status.join(",")} · ${push.count}/${push.total} ${when}`;
  const span = push.time.map((t) => t.toFixed(1)).join("–");
  return `${statusLabel(push.status)} · ${push.count}/${push.total} · rep ${span} s · ${when}`;
}

function card(lane) {
  const alerting = lane.alerts.length > 0;
  const ended = lane.end_status !== null && lane.end_status !== undefined
    ? `${lane.end_status} ${END_STATUSES[String(lane.end_status)] || ""}`
    : lane.phase;
  return el(
    "a",
    {
      class: `lane ${lane.state}${alerting ? " alerting" : ""}`,
      href: `/ui/sessions/${lane.session}`,
      style: "text-decoration:none;color:inherit",
      dataset: { task: lane.task, capture: lane.capture_id, session: lane.session, state: lane.state },
    },
    el("div", {}, el("strong", {}, `${lane.task} · lane ${lane.capture_id}`), " ", el("span", { class: "badge" }, lane.state)),
    el("div", { class: "count", dataset: { count: lane.count, total: lane.total } }, `${lane.count} / ${lane.total}`),
    el("div", { class: "muted" }, `time left ${timeLeft(lane.time_left_s)} · ${ended}`),
    el("div", { class: "muted" }, `last push: ${lastPush(lane.last_push)}`),
    el("div", { class: "alerts" }, lane.alerts.map((a) => el("span", { dataset: { alert: a.code } }, a.text))),
  );
}

function render(board) {
  const holder = document.getElementById("board");
  holder.replaceChildren(...(board.lanes.length ? board.lanes.map(card) : [el("p", { class: "muted" }, "No lanes yet: a tablet's prepare creates one.")]));
  document.getElementById("store").textContent = board.store_ok ? "" : "DATABASE NOT ANSWERING: results are kept in memory and retried";
}

function connect(live) {
  const source = new EventSource("/api/v1/ui/board/stream");
  source.addEventListener("open", () => {
    live.className = "live on";
    live.textContent = "live";
  });
  source.addEventListener("error", async () => {
    live.className = "live off";
    live.textContent = "reconnecting…";
    // A stream refused for a lapsed login: back to the login page.
    const me = await fetch("/api/v1/me", { credentials: "same-origin" }).catch(() => null);
    if (me && me.status === 401) location.assign(loginUrl());
  });
  source.addEventListener("board", (event) => {
    const received = Date.now();
    const board = JSON.parse(event.data);
    for (const lane of board.lanes) {
      const push = lane.last_push;
      if (push && push.at_ms && !seenPushes.has(`${lane.session}:${push.total}:${push.final}`)) {
        seenPushes.add(`${lane.session}:${push.total}:${push.final}`);
        window.khfsmBoard.latenciesMs.push(received - push.at_ms);
      }
    }
    window.khfsmBoard.updates += 1;
    window.khfsmBoard.lanes = board.lanes;
    render(board);
  });
}

async function main() {
  await header("board");
  const live = el("span", { class: "live off", id: "live" }, "connecting…");
  document.getElementById("main").replaceChildren(
    el("h1", {}, "Site board ", live),
    el("p", { class: "error", id: "store" }),
    el("div", { class: "board", id: "board" }),
  );
  connect(live);
}

main().catch(fail);
