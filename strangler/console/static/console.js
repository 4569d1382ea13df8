// The console page: renders the live document the server pushes (server-sent events) and
// sends the actions, each with the session's anti-forgery token. No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
let csrfToken = "";
let latest = null;
let openTrace = null;

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function table(id, headings, rows) {
  const target = $(id);
  target.replaceChildren(
    el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))),
  );
}

const pct = (ratio) => (ratio === null || ratio === undefined ? "-" : `${(ratio * 100).toFixed(1)}%`);
const ms = (value) => (value === null || value === undefined ? "-" : `${value} ms`);
const num = (value, digits = 1) => (value === null || value === undefined ? "-" : Number(value).toFixed(digits));

function render(doc) {
  latest = doc;
  const journey = doc.journey;
  $("headline").textContent = `stage ${journey.stage}: ${journey.title}` + (doc.url ? `  ·  ${doc.url}` : "");
  $("problems").textContent = (doc.problems || []).join(" · ");
  renderJourney(journey);
  renderAction(doc.action);
  renderRoutes(doc.routes);
  renderShadow(doc.shadow);
  renderData(doc.data);
  renderProcesses(doc.processes);
  renderGraph(doc.graph);
  renderTraces(doc.traces);
}

function renderJourney(journey) {
  $("stages").replaceChildren(
    ...journey.stages.map((stage) =>
      el("li", {
        class: [stage.done ? "done" : "", stage.number === journey.stage ? "current" : ""].join(" "),
        title: stage.summary,
        "data-stage": stage.number,
      }, `${stage.number}. ${stage.title}`)),
  );
  const moving = journey.moving;
  $("move").textContent = moving
    ? `under way: stage ${moving.from_stage} → ${moving.to_stage}; passed: ${moving.passed.join(", ") || "nothing yet"}` +
      (moving.started ? `; running: ${moving.started}` : "")
    : "no move under way";
  $("gates-of").textContent = journey.gates.length ? `(into stage ${journey.next_stage})` : "(none: the last stage)";
  $("gates").replaceChildren(
    ...journey.gates.map((gate) => el("li", { class: gate.status, "data-gate": gate.name }, `${gate.title} — ${gate.status}`)),
  );
  table("thresholds", ["setting", "value"], Object.entries(journey.thresholds).map(([k, v]) => [k, JSON.stringify(v)]));
  const select = $("promote-stage");
  const chosen = select.value;
  select.replaceChildren(...journey.stages.map((s) => el("option", { value: s.number }, `stage ${s.number}`)));
  select.value = chosen || String(journey.stages[journey.stages.length - 1].number);
  table(
    "decisions",
    ["when", "who", "what", "why"],
    [...journey.decisions].reverse().slice(0, 15).map((entry) => [
      (entry.at || "").replace("T", " ").slice(0, 19),
      entry.actor || "",
      entry.action || "",
      entry.reason || entry.outcome || "",
    ]),
  );
}

function renderAction(action) {
  const running = action && action.running;
  $("action-pause").disabled = !running;
  for (const name of ["continue", "rollback", "promote", "check"]) $(`action-${name}`).disabled = Boolean(running);
  if (!action) return;
  $("action-status").textContent =
    `${action.command} (${action.actor}): ` +
    (action.running ? "running" : action.exit_code === 0 ? "done" : `exited with ${action.exit_code}`);
  const output = $("action-output");
  output.hidden = false;
  const atBottom = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
  output.textContent = action.lines.join("\n");
  if (atBottom) output.scrollTop = output.scrollHeight;
}

function side(flow) {
  if (!flow) return "-";
  return `${num(flow.requests_per_second)}/s · ${pct(flow.error_ratio)} err · p50 ${ms(flow.p50_ms)} · p95 ${ms(flow.p95_ms)}`;
}

function renderRoutes(routes) {
  const shown = routes.filter((route) => route.methods.join() !== "*");
  table(
    "routes",
    ["route", "methods", "path", "owner", "mode", "canary desired / served", "monolith", "service"],
    shown.map((route) => [
      route.name,
      route.methods.join(","),
      route.path,
      route.data_owner,
      el("span", { class: `mode ${route.mode}`, "data-route-mode": route.name }, route.mode),
      route.mode === "canary"
        ? `${route.canary_percent}% / ${pct(route.served_ratio)}`
        : route.served_ratio === null ? "-" : `served ${pct(route.served_ratio)}`,
      side(route.sides.monolith),
      side(route.sides.service),
    ]),
  );
}

function renderShadow(shadow) {
  const routes = Object.entries(shadow.routes || {});
  table(
    "shadow",
    ["route", "compared", "mismatch (raw)", "mismatch (after noise rules)", "errors", "fields that differ most"],
    routes.map(([name, stats]) => [
      name,
      stats.compared,
      pct(stats.raw_mismatch_rate),
      pct(stats.mismatch_rate),
      stats.errors,
      (stats.top_fields || []).map((f) => `${f.field} (${f.count})`).join(", ") || "-",
    ]),
  );
  const samples = (shadow.samples || []).slice(-3).reverse();
  $("samples").replaceChildren(
    ...samples.map((sample) =>
      el("div", { class: "sample" },
        el("h3", {}, `${sample.method} ${sample.target} — ${sample.route}: ${sample.fields.join(", ")}`),
        diff(sample.monolith_excerpt, sample.service_excerpt),
      )),
  );
}

function pretty(text) {
  if (text === null || text === undefined) return ["(too large to keep)"];
  try { return JSON.stringify(JSON.parse(text), null, 2).split("\n"); } catch { return text.split("\n"); }
}

function diff(left, right) {
  const a = pretty(left);
  const b = pretty(right);
  const side = (lines, other) =>
    el("pre", {}, lines.map((line, i) => el("span", { class: line !== other[i] ? "changed" : "" }, line + "\n")));
  return el("div", { class: "diff", "data-testid": "shadow-diff" },
    el("div", {}, el("div", { class: "muted" }, "monolith"), side(a, b)),
    el("div", {}, el("div", { class: "muted" }, "service"), side(b, a)));
}

function renderData(contexts) {
  table(
    "data",
    ["context", "served by", "data owner", "sync", "lag", "last freeze", ""],
    contexts.map((c) => [
      c.context,
      c.served_by,
      c.data_owner,
      c.sync,
      c.lag_entries === null ? "-" : `${c.lag_entries} changes, ${num(c.lag_seconds, 2)} s`,
      c.last_freeze_seconds === null ? "-" : `${(c.last_freeze_seconds * 1000).toFixed(0)} ms`,
      c.data_owner.startsWith("(") ? "" :
        el("button", { type: "button", onclick: () => act("verify", { context: c.context }) }, "verify"),
    ]),
  );
}

function renderProcesses(processes) {
  table(
    "processes",
    ["process", "health", "pid", "port", "restarts", "cpu", "memory", "lag", ""],
    processes.map((p) => [
      p.name,
      el("span", { class: p.is_healthy ? "good" : "bad" }, p.is_healthy ? "healthy" : p.is_running ? "not healthy" : "not running"),
      p.pid,
      p.port,
      p.restarts,
      p.cpu_percent === null ? "-" : `${p.cpu_percent}%`,
      p.memory_mb === null ? "-" : `${p.memory_mb} MB`,
      Object.entries(p.lags).map(([k, v]) => `${k} ${v}`).join(", ") || "-",
      el("a", { onclick: () => showLog(p.name) }, "log"),
    ]),
  );
}

async function showLog(name) {
  const answer = await fetch(`/api/logs/${encodeURIComponent(name)}?lines=200`);
  const body = await answer.json();
  $("log").hidden = false;
  $("log-title").textContent = `${name}: ${body.log || ""}`;
  $("log-lines").textContent = (body.lines || [body.detail]).join("\n");
}

function renderGraph(graph) {
  const svg = $("graph");
  const ns = "http://www.w3.org/2000/svg";
  const make = (tag, attributes, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const nodes = graph.nodes;
  const place = {};
  nodes.forEach((name, i) => {
    const angle = (2 * Math.PI * i) / Math.max(nodes.length, 1) - Math.PI / 2;
    place[name] = [360 + 290 * Math.cos(angle), 180 + 140 * Math.sin(angle)];
  });
  const children = [];
  for (const edge of graph.edges) {
    const [x1, y1] = place[edge.from] || [0, 0];
    const [x2, y2] = place[edge.to] || [0, 0];
    const bad = edge.error_ratio > 0.01;
    children.push(make("line", { x1, y1, x2, y2, stroke: bad ? "#c0392b" : "#8aa0b8", "stroke-width": Math.min(1 + edge.rps / 5, 6), "marker-end": "url(#arrow)" }));
    children.push(make("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 3, "text-anchor": "middle", fill: bad ? "#c0392b" : "#445" },
      `${edge.rps}/s${edge.error_ratio ? ` · ${(edge.error_ratio * 100).toFixed(1)}% err` : ""}`));
  }
  for (const name of nodes) {
    const [x, y] = place[name];
    children.push(make("circle", { cx: x, cy: y, r: 6, fill: "#3b6ea8" }));
    children.push(make("text", { x, y: y + 18, "text-anchor": "middle" }, name));
  }
  const defs = make("defs", {});
  const marker = make("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "16", refY: "5", markerWidth: "6", markerHeight: "6", orient: "auto" });
  marker.append(make("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8aa0b8" }));
  defs.append(marker);
  svg.replaceChildren(defs, ...children);
}

function renderTraces(traces) {
  table(
    "traces",
    ["trace", "services", "spans", "duration", "errors"],
    traces.slice(0, 12).map((t) => [
      el("a", { onclick: () => showTrace(t.trace_id), "data-trace": t.trace_id }, t.name),
      t.services.join(", "),
      t.spans,
      `${t.duration_ms} ms`,
      t.errors ? el("span", { class: "bad" }, t.errors) : "0",
    ]),
  );
  if (openTrace) showTrace(openTrace, true);
}

async function showTrace(traceId, quiet = false) {
  openTrace = traceId;
  const answer = await fetch(`/api/traces/${traceId}`);
  if (!answer.ok) { if (!quiet) $("waterfall").textContent = "that trace is no longer recent"; return; }
  const trace = await answer.json();
  const total = Math.max(trace.duration_ms, 0.001);
  $("waterfall").replaceChildren(
    el("h3", {}, `trace ${trace.trace_id} · ${trace.duration_ms} ms`),
    el("div", { class: "waterfall" },
      trace.spans.map((span) =>
        el("div", { class: "row", title: JSON.stringify(span.attributes) },
          el("span", { style: `padding-left:${span.depth * 12}px` }, `${span.service}: ${span.name}`),
          el("span", { class: "track" },
            el("span", { class: `span${span.is_error ? " error" : ""}`, style: `left:${(100 * span.offset_ms) / total}%;width:${(100 * span.duration_ms) / total}%` })),
          el("span", { class: "muted" }, `${span.duration_ms} ms`)))),
  );
}

async function act(action, extra = {}) {
  const answer = await fetch("/api/actions", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
    body: JSON.stringify({ action, ...extra }),
  });
  const body = await answer.json();
  if (!answer.ok) { $("action-status").textContent = `${action}: ${body.detail}`; return; }
  renderAction(body);
}

function listen() {
  const source = new EventSource("/api/events");
  source.addEventListener("state", (event) => { $("live").classList.add("on"); render(JSON.parse(event.data)); });
  source.addEventListener("error", () => $("live").classList.remove("on"));
}

async function start() {
  const answer = await fetch("/api/session");
  if (answer.status === 401) { location.assign("/signin"); return; }
  const session = await answer.json();
  csrfToken = session.csrf_token;
  $("actor").textContent = `signed in as ${session.actor}`;
  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => {
      const action = button.dataset.action;
      if (action === "rollback" && !confirm("Roll the last move back?")) return;
      act(action, action === "promote" ? { stage: Number($("promote-stage").value) } : {});
    });
  }
  $("signout").addEventListener("click", async () => {
    await fetch("/signout", { method: "POST", headers: { "X-CSRF-Token": csrfToken } });
    location.assign("/signin");
  });
  listen();
}

start();
