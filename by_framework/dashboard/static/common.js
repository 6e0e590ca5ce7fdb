// What every page shares: the viewer's token, calls to api/, live streams, DOM helpers.
// The token is asked for once and kept in sessionStorage (this tab, until it closes); it goes
// to api/ as "Authorization: Bearer", and to EventSource, which cannot set headers, as
// ?access_token=.

const TOKEN = "by-framework-dashboard-token";
const READ_ONLY = "read-only: this takes a token with the admin scope";

export const viewer = { subject: null, admin: false, auth: false };

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN);
}

// The JSON answer of api/..., asking for a token (again) on 401; an ApiError otherwise.
export async function api(path, { method = "GET", body } = {}) {
  for (;;) {
    const headers = {};
    const bearer = token();
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (response.headers.get("content-type") || "").includes("application/json");
    const data = json ? await response.json() : null;
    if (response.status === 401) {
      await signIn(detailOf(data, response));
      continue;
    }
    if (!response.ok) throw new ApiError(response.status, detailOf(data, response));
    return data;
  }
}

function detailOf(data, response) {
  const detail = data && data.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((problem) => problem.msg).join("; ");
  return `${response.status} ${response.statusText}`;
}

// Resolves once the viewer entered a token; a refused one is shown with why.
function signIn(problem) {
  const dialog = document.getElementById("sign-in");
  const error = document.getElementById("sign-in-error");
  error.textContent = problem;
  error.hidden = !token(); // no token yet: nothing was refused
  sessionStorage.removeItem(TOKEN);
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        const input = document.getElementById("token");
        sessionStorage.setItem(TOKEN, input.value.trim());
        input.value = "";
        resolve();
      },
      { once: true },
    );
    if (!dialog.open) dialog.showModal();
  });
}

// An EventSource on api/...; it reconnects by itself, sending Last-Event-ID.
export function follow(path) {
  const url = new URL(path, document.baseURI);
  const bearer = token();
  if (bearer) url.searchParams.set("access_token", bearer);
  return new EventSource(url);
}

// Who is looking (asking for a token first if need be), shown in the header.
export async function start() {
  document.getElementById("sign-in").addEventListener("cancel", (event) => event.preventDefault());
  Object.assign(viewer, await api("api/whoami"));
  const badge = document.getElementById("viewer");
  const role = viewer.admin ? "admin" : "read-only";
  badge.replaceChildren(h("span", { class: `role ${role}` }, role), " ", viewer.subject);
  if (viewer.auth) {
    badge.append(" ", h("button", { class: "link", id: "sign-out", onclick: signOut }, "sign out"));
  }
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("current", link.dataset.page === document.body.dataset.page);
  }
  document.getElementById("open-session").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = new FormData(event.target).get("session").trim();
    if (id) location.href = sessionHref(id);
  });
  return viewer;
}

function signOut() {
  sessionStorage.removeItem(TOKEN);
  location.reload();
}

// An element: h("a", { href, class, onclick, dataset }, ...children). Children are text or
// nodes; text is never parsed as HTML.
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

// A button that changes something: pressable by admins only.
export function actionButton(label, className, onclick) {
  return h(
    "button",
    {
      class: `action ${className}`,
      onclick,
      disabled: !viewer.admin,
      title: viewer.admin ? undefined : READ_ONLY,
    },
    label,
  );
}

export function panel(title, ...content) {
  return h("section", { class: "panel" }, h("h2", {}, title), ...content);
}

// A table whose body is kept in step with a list of items, row by row and cell by cell, so
// that a refresh every second neither flickers nor swallows a click on a button in it.
export function liveTable(id, headings) {
  const body = h("tbody");
  const table = h("table", { id }, h("thead", {}, h("tr", {}, headings.map((t) => h("th", {}, t)))), body);
  function update(items, keyOf, cellsOf) {
    const existing = new Map([...body.rows].map((row) => [row.dataset.key, row]));
    const rows = items.map((item) => {
      const key = keyOf(item);
      const row = existing.get(key) || h("tr", { dataset: { key } });
      cellsOf(item).forEach((content, i) => {
        const fresh = h("td", {}, content);
        const old = row.cells[i];
        if (!old) row.append(fresh);
        else if (old.innerHTML !== fresh.innerHTML) old.replaceWith(fresh);
      });
      return row;
    });
    const order = (list) => list.map((row) => row.dataset.key).join("\n");
    if (order(rows) !== order([...body.rows])) body.replaceChildren(...rows);
  }
  return { table, update };
}

export function notify(message, kind = "info") {
  const banner = document.getElementById("banner");
  banner.textContent = message;
  banner.className = `banner ${kind}`;
  banner.hidden = false;
}

export function statusBadge(status) {
  return h("span", { class: `status s-${status || "unknown"}` }, status || "expired");
}

export const sessionHref = (id) => `sessions/${encodeURIComponent(id)}`;
export const taskHref = (id) => `tasks?id=${encodeURIComponent(id)}`;

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return seconds % 60 < 1 ? `${minutes}m` : `${minutes}m ${Math.floor(seconds % 60)}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

export function ago(seconds) {
  return seconds === null || seconds === undefined ? "never" : `${duration(seconds)} ago`;
}

export function clock(unix) {
  return new Date(unix * 1000).toLocaleTimeString([], { hour12: false });
}

export function dateTime(unix) {
  return `${new Date(unix * 1000).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

// A page's script: run main() once the viewer is known; an error is shown, not swallowed.
export function page(main) {
  start()
    .then(main)
    .catch((error) => notify(error.message, "error"));
}
