import { api, el } from "./api.js";

function safeNext() {
  // Only a path on this server: never an open redirect to another site.
  const next = new URLSearchParams(location.search).get("next") || "/ui/";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/ui/";
}

const main = document.getElementById("main");
const message = el("p", { class: "error", id: "login-error" });
const form = el(
  "form",
  { class: "panel login", id: "login-form" },
  el("h1", {}, "khfsm — log in"),
  el("label", { for: "username" }, "User"),
  el("input", { id: "username", name: "username", autocomplete: "username", required: true, autofocus: true }),
  el("label", { for: "password" }, "Password"),
  el("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true }),
  el("button", { class: "primary", type: "submit", id: "login-submit" }, "Log in"),
  message,
);
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  message.textContent = "";
  try {
    await api("/api/v1/login", {
      method: "POST",
      body: { username: form.username.value, password: form.password.value },
    });
    location.assign(safeNext());
  } catch (error) {
    message.textContent = error.status === 401 ? "wrong user or password" : error.message;
  }
});
main.replaceChildren(form);
