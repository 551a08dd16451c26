// Gannet status page. Every string from the gateway (client ids, topics,
// addresses) is attacker-chosen: it goes into the page with textContent
// only, never as markup.
"use strict";

const pageSize = 50;
let offset = 0;
let timer = null;
let detailID = null;

const $ = (id) => document.getElementById(id);

function text(el, s) { el.textContent = s; return el; }

function cell(row, s, cls) {
  const td = document.createElement("td");
  td.textContent = s;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function dl(el, pairs) {
  el.replaceChildren();
  for (const [k, v] of pairs) {
    el.appendChild(text(document.createElement("dt"), k));
    el.appendChild(text(document.createElement("dd"), String(v)));
  }
}

function seconds(ns) { return ns ? (ns / 1e9) + " s" : "-"; }

function ago(t) {
  const s = Math.max(0, (Date.now() - Date.parse(t)) / 1000);
  if (s < 60) return s.toFixed(0) + " s ago";
  if (s < 3600) return (s / 60).toFixed(0) + " min ago";
  return (s / 3600).toFixed(1) + " h ago";
}

function duration(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? d + "d " : "") + h + "h " + m + "m";
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function showError(err) {
  const e = $("error");
  if (err) { text(e, String(err.message || err)); e.hidden = false; } else { e.hidden = true; }
}

async function loadStatus() {
  const s = await getJSON("/api/status");
  text($("host"), s.hostname);
  document.title = "Gannet " + s.hostname;
  text($("summary"), "version " + s.version + ", up " + duration(s.uptime_seconds) +
    (s.ready ? "" : ", NOT READY"));
  const c = s.counts || {};
  dl($("counts"), [["active", c.Active ?? "?"], ["asleep", c.Asleep ?? "?"], ["awake", c.Awake ?? "?"],
    ["registrations", c.Registrations ?? "?"], ["behind forwarders", c.Forwarded ?? "?"]]);
  const ls = $("listeners");
  ls.replaceChildren();
  for (const l of s.listeners) {
    ls.appendChild(text(document.createElement("li"), l.protocol + " " + l.network + " " + l.address));
  }
  const bs = $("bridges");
  bs.replaceChildren();
  if (s.bridges.length === 0) bs.appendChild(text(document.createElement("li"), "none"));
  for (const b of s.bridges) {
    bs.appendChild(text(document.createElement("li"), b.name + ": " + (b.connected ? "up" : "DOWN") +
      ", " + b.queued + " queued" + (b.queued ? ", oldest " + b.oldest_age_seconds.toFixed(0) + " s" : "")));
  }
  dl($("traffic"), [["datagrams in", s.gateway.Received], ["datagrams out", s.gateway.Sent],
    ["malformed", s.gateway.Malformed], ["retransmissions", s.gateway.Retransmits],
    ["messages in (core)", s.broker.MessagesReceived], ["messages out (core)", s.broker.MessagesSent],
    ["queued (core)", s.broker.Queued]]);
}

async function loadSensors() {
  const q = new URLSearchParams({ q: $("search").value, state: $("state").value, offset: offset, limit: pageSize });
  const page = await getJSON("/api/sensors?" + q);
  const rows = $("rows");
  rows.replaceChildren();
  for (const s of page.sensors) {
    const tr = document.createElement("tr");
    tr.dataset.clientId = s.client_id;
    cell(tr, s.client_id, "id");
    cell(tr, s.address + (s.node ? " node " + s.node : ""), "address");
    cell(tr, s.state + (s.sleep_duration_ns ? " (" + seconds(s.sleep_duration_ns) + ")" : ""), "state state-" + s.state);
    cell(tr, seconds(s.keep_alive_ns), "num");
    cell(tr, ago(s.last_seen), "num");
    cell(tr, s.queued, "num queued");
    cell(tr, s.registrations, "num");
    tr.addEventListener("click", () => { detailID = s.client_id; loadDetail(); });
    rows.appendChild(tr);
  }
  const last = Math.min(offset + page.sensors.length, page.matching);
  text($("range"), page.matching ? (offset + 1) + "–" + last + " of " + page.matching : "no sensors");
  $("prev").disabled = offset === 0;
  $("next").disabled = last >= page.matching;
}

async function loadDetail() {
  if (detailID === null) { $("detail").hidden = true; return; }
  const d = await getJSON("/api/sensor?" + new URLSearchParams({ id: detailID }));
  text($("detail-id"), d.client_id);
  const sess = d.session || {};
  dl($("detail-fields"), [["address", d.address], ["forwarder node", d.node || "-"], ["listener", d.listener],
    ["state", d.state], ["keep-alive", seconds(d.keep_alive_ns)], ["sleep duration", seconds(d.sleep_duration_ns)],
    ["last seen", new Date(d.last_seen).toISOString() + " (" + ago(d.last_seen) + ")"],
    ["queued", d.queued], ["in flight", sess.Inflight ?? "-"], ["subscriptions", sess.Subscriptions ?? "-"],
    ["dropped from queue", sess.Dropped ?? "-"], ["will", sess.HasWill ? "yes" : "no"]]);
  const tb = $("detail-topics");
  tb.replaceChildren();
  for (const t of d.topics) {
    const tr = document.createElement("tr");
    cell(tr, t.id);
    cell(tr, t.name);
    tb.appendChild(tr);
  }
  $("detail").hidden = false;
}

let lastMs = 0;

async function refresh() {
  const t0 = performance.now();
  try {
    await Promise.all([loadStatus(), loadSensors(), loadDetail()]);
    showError(null);
  } catch (err) {
    showError(err);
  }
  lastMs = performance.now() - t0;
  document.body.dataset.loaded = "true";
}

// schedule refreshes every 2 s, or three times as long as the last
// refresh took: a gateway with 100,000 sensors is not asked faster than
// it answers.
function schedule() {
  clearTimeout(timer);
  if (!$("auto").checked) return;
  timer = setTimeout(async () => { await refresh(); schedule(); }, Math.max(2000, 3 * lastMs));
}

document.addEventListener("DOMContentLoaded", () => {
  $("filter").addEventListener("submit", (e) => e.preventDefault());
  $("search").addEventListener("input", () => { offset = 0; refresh(); });
  $("state").addEventListener("change", () => { offset = 0; refresh(); });
  $("auto").addEventListener("change", schedule);
  $("prev").addEventListener("click", () => { offset = Math.max(0, offset - pageSize); refresh(); });
  $("next").addEventListener("click", () => { offset += pageSize; refresh(); });
  $("close").addEventListener("click", () => { detailID = null; $("detail").hidden = true; });
  const m = location.hash.match(/^#sensor=(.*)$/);
  if (m) detailID = decodeURIComponent(m[1]);
  refresh();
  schedule();
});
