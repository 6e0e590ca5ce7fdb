// Dead letters: why each command was rejected and the head of it; an admin replays one (back
// onto its stream, as a new entry) or purges it.

import {
  actionButton, api, dateTime, h, notify, page, panel, sessionHref, taskHref,
} from "./common.js";

page(async () => {
  const body = h("tbody");
  const table = h(
    "table",
    { id: "dead-letters" },
    h("thead", {}, h("tr", {}, ["Dead since", "Stream", "Task", "Reason", "Entry", ""].map((t) => h("th", {}, t)))),
    body,
  );
  const empty = h("p", { class: "muted", id: "no-dead-letters", hidden: true }, "No dead letters.");
  const more = h("button", { id: "more", hidden: true }, "More");
  document.getElementById("main").append(h("h1", {}, "Dead letters"), panel("Oldest first", table, empty, more));

  function removed(row) {
    row.remove();
    empty.hidden = body.rows.length > 0;
  }

  async function act(row, letter, button, call, done) {
    button.disabled = true;
    try {
      notify(done(await call()));
      removed(row);
    } catch (error) {
      notify(error.message, "error");
      button.disabled = false;
    }
  }

  function letterRow(letter) {
    const path = `api/dead-letters/${encodeURIComponent(letter.id)}`;
    const row = h("tr", { dataset: { key: letter.id } });
    const replay = actionButton("Replay", "replay", () => act(row, letter, replay,
      () => api(`${path}/replay`, { method: "POST" }),
      (answer) => `Replayed ${letter.id}: back on ${letter.stream} as entry ${answer.entry_id}`));
    const purge = actionButton("Purge", "purge", () => {
      if (confirm(`Delete dead letter ${letter.id} for good?`)) {
        act(row, letter, purge, () => api(path, { method: "DELETE" }), () => `Purged ${letter.id}`);
      }
    });
    const task = letter.message_id
      ? [h("a", { href: taskHref(letter.message_id) }, h("code", {}, letter.message_id)),
        h("br"), h("a", { href: sessionHref(letter.session_id), class: "muted" }, `session ${letter.session_id}`)]
      : "–";
    row.append(
      h("td", {}, dateTime(letter.at)),
      h("td", { class: "stream" }, h("code", {}, letter.stream)),
      h("td", {}, task),
      h("td", { class: "reason" }, letter.reason),
      h("td", { class: "entry" }, h("pre", { class: "head" }, letter.head),
        letter.truncated ? h("span", { class: "muted" }, "truncated: cannot be replayed") : ""),
      h("td", {}, h("span", { class: "actions" }, replay, purge)),
    );
    return row;
  }

  async function load(after) {
    const listed = await api(`api/dead-letters?after=${encodeURIComponent(after)}`);
    body.append(...listed.dead_letters.map(letterRow));
    empty.hidden = body.rows.length > 0;
    more.hidden = listed.next_after === null;
    more.onclick = () => load(listed.next_after).catch((error) => notify(error.message, "error"));
  }

  await load("-");
});
