// Talking to the server: JSON over fetch with the login cookie; a 401 sends the browser to
// the login page and back here afterwards.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export function loginUrl() {
  const here = location.pathname + location.search;
  return "/ui/login?next=" + encodeURIComponent(here);
}

export async function api(path, { method = "GET", body } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401 && !path.endsWith("/login")) {
    location.assign(loginUrl());
    throw new ApiError(401, "not logged in");
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const detail = data && data.detail ? data.detail : response.statusText;
    throw new ApiError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return data;
}

// `el("td", {class: "x", onclick: f}, "text", child)`: a small DOM builder.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// The page header with the navigation and who is logged in; resolves to {user, role}.
export async function header(here) {
  const me = await api("/api/v1/me");
  const top = document.querySelector("header.top");
  const logout = async () => {
    await api("/api/v1/logout", { method: "POST" }).catch(() => {});
    location.assign("/ui/login");
  };
  top.replaceChildren(
    el("a", { href: "/ui/", class: here === "sessions" ? "here" : null }, "Sessions"),
    el("a", { href: "/ui/board", class: here === "board" ? "here" : null }, "Site board"),
    el("span", { class: "who", id: "who", dataset: { role: me.role } }, `${me.user} · ${me.role}`),
    el("button", { type: "button", onclick: logout, id: "logout" }, "Log out"),
  );
  return me;
}

export function fail(error) {
  const main = document.getElementById("main");
  main.replaceChildren(el("p", { class: "error", id: "page-error" }, String(error.message || error)));
}

export function fmtTime(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  const m = Math.floor(seconds / 60);
  const s = seconds - 60 * m;
  return `${m}:${s.toFixed(2).padStart(5, "0")}`;
}

export function fmtDate(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { hour12: false });
}

// End statuses (khfsm/domain/codes.py), for filters and labels.
export const END_STATUSES = {
  "-1": "stopped by the operator",
  "-2": "time is up",
  "-3": "unallowed motion",
  "-4": "video source lost",
  "-5": "internal error",
  "-6": "server shutting down",
  "-7": "server stopped unexpectedly",
};
