// A session: its events as they stream (api/sessions/{id}/events; EventSource resumes after a
// disconnect with Last-Event-ID), the tree of its tasks, and ask_user prompts an admin answers.

import {
  api, ApiError, clock, follow, h, notify, page, panel, statusBadge, taskHref, viewer,
} from "./common.js";

const TYPES = ["chunk", "part", "state", "artifact", "ask_user", "result", "end", "error", "gap"];
const SHOWN_CHARS = 2000;

page(() => {
  const sessionId = document.body.dataset.subject;
  const path = `api/sessions/${encodeURIComponent(sessionId)}`;
  const timeline = h("ol", { id: "timeline", class: "timeline" });
  const tree = h("div", { id: "tree" }, h("p", { class: "muted" }, "Loading…"));
  const live = h("span", { class: "live", id: "live" }, "connecting…");
  document.getElementById("main").append(
    h("h1", {}, "Session ", h("code", {}, sessionId), " ", live),
    h("div", { class: "columns" },
      panel("Events", timeline),
      panel("Tasks", tree)),
  );

  let treeTimer = null;
  function reloadTree() {
    clearTimeout(treeTimer);
    treeTimer = setTimeout(loadTree, 200);
  }
  async function loadTree() {
    try {
      const session = await api(path);
      tree.replaceChildren(h("ul", { class: "tree" }, session.tree.map(node)));
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
      tree.replaceChildren(h("p", { class: "muted" }, "No task recorded in this session yet."));
    }
  }

  function row(type, data, ...body) {
    const item = h(
      "li",
      { class: `event e-${type}`, dataset: { type, messageId: data.message_id || "" } },
      h("span", { class: "time" }, data.ts ? clock(data.ts) : ""),
      data.message_id
        ? h("a", { class: "task", href: taskHref(data.message_id), title: data.message_id },
          data.message_id.slice(0, 8))
        : h("span", { class: "task" }),
      h("span", { class: "agent" }, data.agent_type || ""),
      h("span", { class: "kind" }, type),
      h("div", { class: "body" }, ...body),
    );
    const atEnd = timeline.scrollTop + timeline.clientHeight >= timeline.scrollHeight - 4;
    timeline.append(item);
    if (atEnd) timeline.scrollTop = timeline.scrollHeight;
    return item;
  }

  // The task runs again: its question was answered (here, or elsewhere).
  function answered(messageId) {
    for (const form of timeline.querySelectorAll(`li[data-message-id="${CSS.escape(messageId)}"] form`)) {
      closeForm(form);
    }
  }

  function askForm(messageId, event) {
    if (!viewer.admin) {
      return h("p", { class: "muted" }, "waiting for an answer (an admin may answer here)");
    }
    const input = h("input", { name: "answer", placeholder: "your answer", required: true, autocomplete: "off" });
    const button = h("button", { class: "action answer" }, "Answer");
    const form = h("form", { class: "ask inline" }, input, button);
    if (event.options) {
      input.setAttribute("list", `options-${messageId}`);
      form.append(h("datalist", { id: `options-${messageId}` }, event.options.map((o) => h("option", { value: o }))));
    }
    form.addEventListener("submit", async (submitted) => {
      submitted.preventDefault();
      button.disabled = true;
      form.dataset.answer = input.value; // the run it resumes may show before the answer to this
      try {
        await api(`api/tasks/${encodeURIComponent(messageId)}/resume`, {
          method: "POST", body: { content: input.value },
        });
        closeForm(form);
      } catch (error) {
        delete form.dataset.answer;
        notify(error.message, "error");
        button.disabled = false;
      }
    });
    return form;
  }

  function show(type, data) {
    const event = data.event || {};
    const last = timeline.lastElementChild;
    if (type === "chunk" && last && last.dataset.type === "chunk" &&
        last.dataset.messageId === data.message_id && last.dataset.kind === event.kind) {
      last.querySelector(".text").append(event.content);
      return;
    }
    if (type === "chunk") {
      row(type, data, h("span", { class: `text ${event.kind}` }, event.content)).dataset.kind = event.kind;
    } else if (type === "part") {
      const where = event.namespace && event.namespace.length ? ` (${event.namespace.join(" / ")})` : "";
      row(type, data, `${event.mode}${where} `, h("code", {}, shorten(JSON.stringify(event.data ?? null))));
    } else if (type === "state") {
      row(type, data, statusBadge(event.state), event.detail ? ` ${event.detail}` : "");
      if (event.state === "running") answered(data.message_id);
    } else if (type === "artifact") {
      const name = event.name || event.url || "artifact";
      row(type, data, event.url ? h("a", { href: event.url, rel: "noreferrer" }, name) : name,
        event.mime_type ? ` (${event.mime_type})` : "");
    } else if (type === "ask_user") {
      row(type, data, h("p", { class: "prompt" }, event.prompt), askForm(data.message_id, event));
    } else if (type === "result") {
      const result = event.result || {};
      row(type, data, statusBadge(result.status), " ", h("code", {}, shorten(JSON.stringify(result.content ?? null))),
        result.error ? h("p", { class: "error" }, result.error) : "");
    } else if (type === "end") {
      row(type, data, statusBadge(event.status));
      if (event.status !== "waiting_user") answered(data.message_id);
    } else if (type === "error") {
      row(type, data, h("span", { class: "error" }, event.error));
    } else if (type === "gap") {
      row(type, { message_id: "" }, h("span", { class: "error" }, data.message));
    }
    if (type === "state" || type === "end" || type === "ask_user") reloadTree();
  }

  const source = follow(`${path}/events`);
  for (const type of TYPES) {
    source.addEventListener(type, (message) => show(type, JSON.parse(message.data)));
  }
  source.addEventListener("open", () => {
    live.textContent = "live";
    live.classList.add("on");
  });
  source.addEventListener("error", () => {
    live.textContent = "reconnecting…";
    live.classList.remove("on");
  });
  return loadTree();
});

function node(task) {
  return h(
    "li",
    { dataset: { messageId: task.message_id } },
    statusBadge(task.status), " ",
    h("span", { class: "agent" }, task.agent_type), " ",
    h("a", { href: taskHref(task.message_id) }, h("code", {}, task.message_id)),
    task.children.length ? h("ul", {}, task.children.map(node)) : "",
  );
}

function closeForm(form) {
  if (!form.isConnected) return;
  const answer = form.dataset.answer;
  form.replaceWith(h("p", { class: "muted" }, answer === undefined ? "answered" : `answered: ${answer}`));
}

function shorten(text) {
  return text.length > SHOWN_CHARS ? `${text.slice(0, SHOWN_CHARS)}…` : text;
}
