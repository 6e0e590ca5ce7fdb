// The fleet's last minutes as a small SVG: tasks ended per minute (bars, left scale) and their
// mean run time (line, right scale), from what the workers publish with their heartbeats.

import { duration } from "./common.js";

const NS = "http://www.w3.org/2000/svg";
const WIDTH = 720;
const HEIGHT = 150;
const PAD = { left: 44, right: 64, top: 16, bottom: 34 };

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) element.append(child);
  return element;
}

function minuteClock(minute) {
  return new Date(minute * 60_000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
}

function label(x, y, text, anchor = "start", className = "axis") {
  return svg("text", { x, y, "text-anchor": anchor, class: className }, text);
}

export function activityChart(minutes) {
  const innerWidth = WIDTH - PAD.left - PAD.right;
  const innerHeight = HEIGHT - PAD.top - PAD.bottom;
  const bottom = PAD.top + innerHeight;
  const ended = minutes.map((minute) => minute.ended_total);
  const latencies = minutes.map((minute) => minute.mean_run_seconds);
  const mostEnded = Math.max(1, ...ended);
  const longest = Math.max(0.001, ...latencies.filter((value) => value !== null));
  const slot = innerWidth / Math.max(1, minutes.length);
  const root = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    class: "chart",
    role: "img",
    "aria-label": "tasks ended per minute and their mean run time",
  });
  for (const fraction of [0, 0.5, 1]) {
    const y = bottom - fraction * innerHeight;
    root.append(
      svg("line", { x1: PAD.left, x2: PAD.left + innerWidth, y1: y, y2: y, class: "grid" }),
      label(PAD.left - 6, y + 4, String(Math.round(fraction * mostEnded)), "end"),
      label(PAD.left + innerWidth + 6, y + 4, duration(fraction * longest), "start", "axis latency-axis"),
    );
  }
  minutes.forEach((minute, i) => {
    const height = (minute.ended_total / mostEnded) * innerHeight;
    const mean = minute.mean_run_seconds;
    const title = `${minuteClock(minute.minute)}: ${minute.ended_total} ended` +
      (mean === null ? "" : `, mean run time ${duration(mean)}`);
    root.append(
      svg(
        "rect",
        { x: PAD.left + i * slot + slot * 0.15, y: bottom - height, width: slot * 0.7, height, class: "bar" },
        svg("title", {}, title),
      ),
    );
  });
  const points = minutes
    .map((minute, i) => [minute.mean_run_seconds, PAD.left + (i + 0.5) * slot])
    .filter(([mean]) => mean !== null)
    .map(([mean, x]) => [x, bottom - (mean / longest) * innerHeight]);
  if (points.length > 1) {
    root.append(svg("polyline", { points: points.map((p) => p.join(",")).join(" "), class: "latency" }));
  }
  for (const [x, y] of points) root.append(svg("circle", { cx: x, cy: y, r: 3, class: "latency-point" }));
  if (minutes.length) {
    root.append(
      label(PAD.left, HEIGHT - 16, minuteClock(minutes[0].minute)),
      label(PAD.left + innerWidth, HEIGHT - 16, "now", "end"),
    );
  }
  root.append(
    svg("rect", { x: PAD.left, y: HEIGHT - 10, width: 10, height: 8, class: "bar" }),
    label(PAD.left + 14, HEIGHT - 2, "tasks ended / minute", "start", "legend"),
    svg("line", { x1: PAD.left + 170, x2: PAD.left + 186, y1: HEIGHT - 6, y2: HEIGHT - 6, class: "latency" }),
    label(PAD.left + 190, HEIGHT - 2, "mean run time", "start", "legend"),
  );
  return root;
}
