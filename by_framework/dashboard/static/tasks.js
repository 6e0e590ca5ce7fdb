// A task by its message id: its record, its session, and the tree of its sub-tasks.

import {
  api, ApiError, dateTime, duration, h, page, panel, sessionHref, statusBadge, taskHref,
} from "./common.js";

page(async () => {
  const input = h("input", { id: "task-id", name: "id", placeholder: "message id", required: true, autocomplete: "off" });
  const form = h("form", { id: "task-search", class: "inline" }, input, h("button", {}, "Find"));
  const found = h("div", { id: "task" });
  document.getElementById("main").append(h("h1", {}, "Tasks"), panel("Find a task by its message id", form), found);

  async function show(messageId) {
    input.value = messageId;
    try {
      const task = await api(`api/tasks/${encodeURIComponent(messageId)}`);
      found.replaceChildren(
        panel("Record", record(task.record)),
        panel("Task tree", h("ul", { class: "tree", id: "task-tree" }, node(task.tree, messageId))),
      );
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
      found.replaceChildren(h("p", { class: "error", id: "not-found" }, error.message));
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const messageId = input.value.trim();
    history.replaceState(null, "", taskHref(messageId));
    show(messageId);
  });
  const asked = new URLSearchParams(location.search).get("id");
  if (asked) await show(asked);
});

function record(task) {
  const start = task.timeline.length ? task.timeline[0][1] : task.created_at;
  const ran = task.started_at !== null && task.finished_at !== null
    ? duration(task.finished_at - task.started_at) : "–";
  const rows = [
    ["Task", h("code", {}, task.message_id)],
    ["Agent type", task.agent_type],
    ["Session", h("a", { href: sessionHref(task.session_id), id: "task-session" }, task.session_id)],
    ["Status", statusBadge(task.status)],
    ["Worker", task.worker_id || "–"],
    ["Parent", task.parent_message_id ? h("a", { href: taskHref(task.parent_message_id) }, task.parent_message_id) : "–"],
    ["Children", task.children.length
      ? task.children.flatMap((id, i) => [i ? ", " : "", h("a", { href: taskHref(id) }, id)]) : "–"],
    ["Created", dateTime(task.created_at)],
    ["Last run", ran],
    ["Timeline", task.timeline.map(([status, at]) => `${status} +${duration(at - start)}`).join(" → ") || "–"],
    ["Deliveries", task.delivery_count],
    ["Resumes", task.run],
    ["User", task.user_code || "–"],
  ];
  if (task.error) rows.push(["Error", h("span", { class: "error" }, task.error)]);
  if (task.result) rows.push(["Result", h("pre", {}, JSON.stringify(task.result, null, 2))]);
  return h("dl", { class: "record" }, rows.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

function node(task, current) {
  return h(
    "li",
    { class: task.message_id === current ? "current" : undefined },
    statusBadge(task.status), " ",
    h("span", { class: "agent" }, task.agent_type || "(record expired)"), " ",
    h("a", { href: taskHref(task.message_id) }, h("code", {}, task.message_id)),
    task.children.length ? h("ul", {}, task.children.map((child) => node(child, current))) : "",
  );
}
