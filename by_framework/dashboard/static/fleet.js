// The fleet: workers, agent types' queues, recent outcomes and a chart, pushed by the server
// about once a second (api/fleet/events).

import { activityChart } from "./chart.js";
import {
  actionButton, ago, api, duration, follow, h, liveTable, notify, page, panel, statusBadge,
} from "./common.js";

const ORDERS = { running: ["drain", "evict"], draining: ["resume", "evict"], evicted: ["resume"] };

page(() => {
  const summary = h("section", { class: "cards", id: "summary" });
  const chart = h("div", { id: "chart" });
  const workers = liveTable("workers", [
    "Worker", "State", "Agent types", "Host / PID", "Uptime", "In flight / slots",
    "Last heartbeat", "",
  ]);
  const agentTypes = liveTable("agent-types", [
    "Agent type", "Online workers", "Queued (lag)", "Pending", "Oldest pending", "Stream length",
  ]);
  const live = h("span", { class: "live", id: "live" }, "connecting…");
  document.getElementById("main").append(
    h("h1", {}, "Fleet ", live),
    summary,
    panel("Throughput and latency, last 15 minutes", chart),
    panel("Workers", workers.table),
    panel("Agent types", agentTypes.table),
  );

  function order(workerId, what) {
    return actionButton(what, what, async (event) => {
      event.target.disabled = true;
      try {
        const done = await api(
          `api/workers/${encodeURIComponent(workerId)}/${what}`, { method: "POST" },
        );
        notify(done.message);
      } catch (error) {
        notify(error.message, "error");
        event.target.disabled = false;
      }
    });
  }

  function render(fleet) {
    if (fleet.error) {
      notify(fleet.error, "error");
      return;
    }
    const alive = fleet.workers.filter((w) => !["offline", "stopping"].includes(w.state)).length;
    const ended = Object.entries(fleet.tasks);
    const endedTotal = ended.reduce((sum, [, count]) => sum + count, 0);
    summary.replaceChildren(
      card("Workers", `${alive} / ${fleet.workers.length}`, "running or draining / known"),
      card("Agent types", fleet.agent_types.length, "served or with work waiting"),
      card(
        `Ended, last ${duration(fleet.window_seconds)}`,
        endedTotal,
        ended.map(([status, count]) => `${status} ${count}`).join(", ") || "none",
      ),
      card("Dead letters", h("a", { href: "dead-letters" }, String(fleet.dead_letters)), "replay or purge them"),
    );
    chart.replaceChildren(activityChart(fleet.activity));
    workers.update(fleet.workers, (w) => w.worker_id, (w) => [
      w.worker_id,
      statusBadge(w.state),
      w.agent_types.join(", ") || "–",
      w.host === null ? "–" : `${w.host} / ${w.pid}`,
      duration(w.uptime_seconds),
      `${w.in_flight ?? "–"} / ${w.slots ?? "–"}`,
      ago(w.last_heartbeat_age_seconds),
      h("span", { class: "actions" }, (ORDERS[w.state] || []).map((what) => order(w.worker_id, what))),
    ]);
    agentTypes.update(fleet.agent_types, (a) => a.agent_type, (a) => [
      a.agent_type,
      a.online_workers,
      a.queued ?? `≤ ${a.stream_length}`,
      a.pending,
      duration(a.oldest_pending_age_seconds),
      a.stream_length,
    ]);
  }

  const source = follow("api/fleet/events");
  source.addEventListener("fleet", (event) => {
    live.textContent = "live";
    live.classList.add("on");
    render(JSON.parse(event.data));
  });
  source.addEventListener("error", () => {
    live.textContent = "reconnecting…";
    live.classList.remove("on");
  });
});

function card(title, value, note) {
  return h("div", { class: "card" }, h("div", { class: "card-title" }, title),
    h("div", { class: "card-value" }, value), h("div", { class: "card-note" }, note));
}
