// The session list: filters, sorting and paging live in the page's query string (a filtered
// list is a link a colleague can open), and are passed as they are to GET /api/v1/sessions.
import { api, el, END_STATUSES, fail, fmtDate, header } from "./api.js";

const FILTERS = ["date_from", "date_to", "lane", "task", "outcome", "reviewed", "candidate"];
const TASKS = ["pushup", "situp", "pullup", "squat", "armhang", "FaceDetection"];
const COLUMNS = [
  { key: "started_at", label: "Started", sortable: true },
  { key: "task", label: "Task", sortable: true },
  { key: "capture_id", label: "Lane", sortable: true },
  { key: "candidate", label: "Candidate", sortable: false },
  { key: "end_status", label: "Ended", sortable: true },
  { key: "count", label: "Machine", sortable: true },
  { key: "reviewed", label: "Reviewed", sortable: false },
  { key: "rules_version", label: "Rules", sortable: false },
];
const PAGE_SIZE = 25;

function params() {
  return new URLSearchParams(location.search);
}

function go(changes) {
  const next = params();
  for (const [key, value] of Object.entries(changes)) {
    if (value === "" || value === null || value === undefined) next.delete(key);
    else next.set(key, value);
  }
  history.pushState(null, "", "?" + next.toString());
  load();
}

function select(name, label, options) {
  const current = params().get(name) || "";
  return el(
    "label",
    {},
    label,
    el(
      "select",
      { name, id: `filter-${name}` },
      options.map(([value, text]) => el("option", { value, selected: value === current }, text)),
    ),
  );
}

function input(name, label, type = "text") {
  return el("label", {}, label, el("input", { name, id: `filter-${name}`, type, value: params().get(name) || "" }));
}

function filterForm() {
  const form = el(
    "form",
    { class: "filters", id: "filters" },
    input("date_from", "From", "date"),
    input("date_to", "To", "date"),
    input("lane", "Lane", "number"),
    select("task", "Task", [["", "any"], ...TASKS.map((t) => [t, t])]),
    select("outcome", "Outcome", [["", "any"], ...Object.entries(END_STATUSES).map(([c, t]) => [c, `${c} ${t}`])]),
    select("reviewed", "Reviewed", [["", "any"], ["true", "reviewed"], ["false", "not reviewed"]]),
    input("candidate", "Candidate"),
    el("button", { class: "primary", type: "submit", id: "apply-filters" }, "Filter"),
    el("button", { type: "button", id: "clear-filters", onclick: () => { history.pushState(null, "", "?"); load(); } }, "Clear"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const changes = { page: "" };
    for (const name of FILTERS) changes[name] = form.elements[name].value.trim();
    go(changes);
  });
  return form;
}

function result(row) {
  return `${row.count} / ${row.total}`;
}

function reviewedCell(row) {
  if (!row.reviewed) return el("span", { class: "badge" }, "not reviewed");
  const differs = row.reviewed_count !== row.count || row.reviewed_total !== row.total;
  return el(
    "span",
    { class: "badge reviewed" + (differs ? " differs" : "") },
    `${row.reviewed_count} / ${row.reviewed_total}`,
  );
}

function ended(row) {
  if (row.end_status === null || row.end_status === undefined) return row.state;
  return `${row.end_status} ${END_STATUSES[String(row.end_status)] || row.end_message || ""}`;
}

function table(data) {
  const sort = params().get("sort") || "-started_at";
  const head = el(
    "tr",
    {},
    COLUMNS.map((column) => {
      if (!column.sortable) return el("th", {}, column.label);
      const cls = sort === column.key ? "sorted-asc" : sort === "-" + column.key ? "sorted-desc" : "";
      const next = sort === column.key ? "-" + column.key : column.key;
      return el("th", { class: `sortable ${cls}`, dataset: { sort: column.key }, onclick: () => go({ sort: next, page: "" }) }, column.label);
    }),
  );
  const rows = data.items.map((row) =>
    el(
      "tr",
      { dataset: { session: row.id }, onclick: () => location.assign(`/ui/sessions/${row.id}`) },
      el("td", {}, el("a", { href: `/ui/sessions/${row.id}` }, fmtDate(row.started_at))),
      el("td", {}, row.task),
      el("td", {}, row.capture_id),
      el("td", {}, row.candidate || "–"),
      el("td", {}, ended(row)),
      el("td", { class: "machine" }, result(row)),
      el("td", { class: "reviewed" }, reviewedCell(row)),
      el("td", { class: "muted" }, row.rules_version),
    ),
  );
  return el("table", { class: "list", id: "sessions" }, el("thead", {}, head), el("tbody", {}, rows));
}

function pager(data) {
  const pages = Math.max(1, Math.ceil(data.total / data.page_size));
  return el(
    "div",
    { class: "pager" },
    el("button", { type: "button", id: "prev-page", disabled: data.page <= 1, onclick: () => go({ page: data.page - 1 }) }, "‹ Previous"),
    el("span", { id: "page-info" }, `page ${data.page} of ${pages} · ${data.total} sessions`),
    el("button", { type: "button", id: "next-page", disabled: data.page >= pages, onclick: () => go({ page: data.page + 1 }) }, "Next ›"),
  );
}

async function load() {
  const query = params();
  if (!query.get("sort")) query.set("sort", "-started_at");
  if (!query.get("page_size")) query.set("page_size", String(PAGE_SIZE));
  const main = document.getElementById("main");
  try {
    const data = await api("/api/v1/sessions?" + query.toString());
    main.replaceChildren(el("h1", {}, "Sessions"), filterForm(), table(data), pager(data));
    main.dataset.loaded = query.toString();
  } catch (error) {
    fail(error);
  }
}

window.addEventListener("popstate", load);
header("sessions").then(load, fail);
