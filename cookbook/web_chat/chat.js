// A chat with an agent through the by-framework HTTP gateway, in plain JS (no build step).
//
// The page keeps its session id, the stream id of the last event it showed, and what it showed
// in localStorage, written together after every event. A reload (or a crash, or the next day)
// shows the same conversation and follows the session's events from that id on (?after=): the
// rest of an answer streams in where it stopped, nothing lost and nothing twice.
//
// Settings come from the page's address: ?gateway=http://127.0.0.1:8080&agent=chat&token=...
// (the token, an API key or a JWT, only when the gateway has auth configured).
"use strict";

const params = new URLSearchParams(location.search);
const GATEWAY = (params.get("gateway") || "http://127.0.0.1:8080").replace(/\/+$/, "");
const AGENT = params.get("agent") || "chat";
const TOKEN = params.get("token");
const STORE_KEY = `by-web-chat:${GATEWAY}:${AGENT}`;

let state = load();
let source = null;

function load() {
  const saved = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
  return saved || { sessionId: newSessionId(), lastEventId: "0-0", entries: [] };
}

function newSessionId() {
  // getRandomValues, not randomUUID: the latter exists only on https:// and localhost pages.
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function save() {
  localStorage.setItem(STORE_KEY, JSON.stringify(state));
}

// --- following the session's events -------------------------------------------------------

const HANDLERS = {
  chunk({ message_id, event }) {
    if (event.kind === "text") openAnswer(message_id).text += event.content;
  },
  ask_user({ message_id, event }) {
    state.entries.push({
      role: "ask", messageId: message_id, prompt: event.prompt, options: event.options || [],
      answered: false,
    });
  },
  result({ agent_type, event }) {
    if (event.result.error) notice(`${agent_type}: ${event.result.error}`);
  },
  end({ message_id, event }) {
    const answer = findAnswer(message_id);
    if (answer) {
      answer.done = true;
      answer.status = event.status;
    } else if (!["completed", "waiting_user"].includes(event.status)) {
      notice(`task ${message_id} ended ${event.status}`);
    }
  },
  error({ event }) {
    notice(`error: ${event.error}`);
  },
  gap(gap) {
    notice(gap.message);
  },
};

/** The answer of a task still streaming, or a new one: a run resumed after a question starts a
 * new answer below the question rather than adding to the one above it. */
function openAnswer(messageId) {
  let answer = findAnswer(messageId);
  if (!answer) {
    answer = { role: "agent", messageId, text: "", done: false };
    state.entries.push(answer);
  }
  return answer;
}

function findAnswer(messageId) {
  return state.entries.findLast((e) => e.role === "agent" && e.messageId === messageId && !e.done);
}

function follow() {
  const url = new URL(`${GATEWAY}/v1/sessions/${encodeURIComponent(state.sessionId)}/events`);
  url.searchParams.set("after", state.lastEventId);
  if (TOKEN) url.searchParams.set("access_token", TOKEN); // EventSource cannot set headers
  source = new EventSource(url);
  for (const type of Object.keys(HANDLERS)) {
    source.addEventListener(type, (message) => {
      // "error" is also the name of EventSource's own connection errors, which carry no data.
      if (message instanceof MessageEvent) apply(type, message);
    });
  }
  const opened = source;
  opened.addEventListener("open", () => connection("following"));
  opened.addEventListener("error", () => {
    if (opened !== source) return;
    // A dropped connection is retried by the browser itself, with Last-Event-ID. A refused one
    // (gateway down, 401, 404) closes the EventSource for good: open a new one a little later.
    if (opened.readyState !== EventSource.CLOSED) return connection("reconnecting…");
    connection(`no event stream from ${GATEWAY}; retrying`);
    setTimeout(() => opened === source && follow(), 2000);
  });
}

/** How the event stream is doing: shown, not kept (it is not part of the conversation). */
function connection(text) {
  document.getElementById("connection").textContent = text;
}

function apply(type, message) {
  HANDLERS[type](JSON.parse(message.data));
  if (message.lastEventId) state.lastEventId = message.lastEventId; // a gap has no id
  save();
  render();
}

// --- sending and answering ----------------------------------------------------------------

async function post(path, body) {
  const headers = { "Content-Type": "application/json" };
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  let response;
  try {
    response = await fetch(GATEWAY + path, { method: "POST", headers, body: JSON.stringify(body) });
  } catch (err) {
    throw new Error(`the gateway at ${GATEWAY} did not answer (${err.message}): is it running, ` +
      `with this page's origin ${location.origin} in BYAI_GATEWAY_CORS_ORIGINS?`);
  }
  const reply = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${response.status} ${describe(reply.detail)}`);
  return reply;
}

function describe(detail) {
  if (Array.isArray(detail)) return detail.map((d) => `${d.loc.join(".")}: ${d.msg}`).join("; ");
  return detail || "";
}

async function send(text) {
  // Shown before the request returns: the answer's first chunks may arrive before its reply.
  const entry = { role: "user", text };
  state.entries.push(entry);
  render();
  try {
    const sent = await post(`/v1/sessions/${encodeURIComponent(state.sessionId)}/messages`, {
      agent_type: AGENT, content: text,
    });
    entry.messageId = sent.message_id;
  } catch (err) {
    notice(`not sent: ${err.message}`);
  }
  save();
  render();
}

async function answer(ask, text) {
  const reply = { role: "user", text, messageId: ask.messageId };
  ask.answered = true;
  state.entries.push(reply);
  render();
  try {
    await post(`/v1/tasks/${encodeURIComponent(ask.messageId)}/resume`, { content: text });
  } catch (err) {
    ask.answered = false; // the question is open again
    Object.assign(reply, { role: "notice", text: `answer not sent: ${err.message}` });
  }
  save();
  render();
}

function notice(text) {
  state.entries.push({ role: "notice", text });
}

// --- the page -------------------------------------------------------------------------------

/** Entries are only ever appended or changed in place: update the elements that show them,
 * keeping an open question's input (and what is being typed in it) as it is. */
function render() {
  const log = document.getElementById("log");
  state.entries.forEach((entry, i) => show(entry, log.children[i] || log.appendChild(element())));
  document.getElementById("session").textContent = state.sessionId;
}

function element() {
  return document.createElement("div");
}

function show(entry, el) {
  el.className = `entry ${entry.role}${entry.done ? " done" : ""}`;
  if (entry.messageId) el.dataset.messageId = entry.messageId;
  if (entry.status) el.dataset.status = entry.status;
  if (entry.role !== "ask") {
    el.textContent = entry.text;
    return;
  }
  if (!el.querySelector(".prompt")) {
    el.textContent = "";
    const prompt = el.appendChild(document.createElement("p"));
    prompt.className = "prompt";
    prompt.textContent = entry.prompt;
  }
  const form = el.querySelector("form");
  if (entry.answered) form?.remove();
  else if (!form) el.appendChild(askForm(entry));
}

function askForm(ask) {
  const form = document.createElement("form");
  const input = form.appendChild(document.createElement("input"));
  input.placeholder = ask.options.length ? ask.options.join(" / ") : "your answer";
  const button = form.appendChild(document.createElement("button"));
  button.textContent = "Answer";
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (input.value.trim()) answer(ask, input.value.trim());
  });
  return form;
}

document.getElementById("send").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = document.getElementById("message");
  if (!input.value.trim()) return;
  send(input.value.trim());
  input.value = "";
});

document.getElementById("new-session").addEventListener("click", () => {
  source.close();
  localStorage.removeItem(STORE_KEY);
  state = load();
  document.getElementById("log").replaceChildren();
  render();
  follow();
});

document.getElementById("agent").textContent = AGENT;
document.getElementById("gateway").textContent = GATEWAY;
render();
follow();
