import { html, raw } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { StatusReport } from "../core/status.js";

// The operators' status page: one self-contained HTML document (no script, no external asset,
// so it works on an air-gapped cluster and through any proxy), refreshed every 5 s. Hono's `html`
// escapes every value: job, repository and error texts come from GitHub and the dependencies.

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1f2328;background:#fff}
h1{font-size:1.3rem;margin:0 0 .2rem}h2{font-size:1rem;margin:1.4rem 0 .4rem}
.muted{color:#656d76}.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}
table{border-collapse:collapse;min-width:28rem}td,th{text-align:left;padding:.25rem .8rem .25rem 0;border-bottom:1px solid #d0d7de}
.tiles{display:flex;gap:1rem;flex-wrap:wrap}.tile{border:1px solid #d0d7de;border-radius:6px;padding:.5rem 1rem;min-width:6rem}
.tile b{display:block;font-size:1.6rem}
`;

const ago = (now: number, at: number) => `${Math.max(0, Math.round((now - at) / 1000))} s ago`;

export function renderStatusPage(r: StatusReport): HtmlEscapedString | Promise<HtmlEscapedString> {
  const now = r.generatedAt;
  const s = r.runners.byState;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>nomad-gha-dispatcher: ${r.ready ? "ready" : "not ready"}, ${r.waiting.count} waiting</title>
<style>${raw(STYLE)}</style>
</head>
<body>
<h1>nomad-gha-dispatcher <span class="${r.ready ? "ok" : "bad"}" id="ready">${r.ready ? "ready" : "NOT READY"}</span></h1>
<div class="muted">as of ${new Date(now).toISOString()}, refreshed every 5 s; the same data as <a href="/status.json">/status.json</a></div>

<h2>Health</h2>
<table id="health"><tr><th>System</th><th>State</th><th>Detail</th></tr>
${Object.entries(r.health).map(
  ([name, c]) => html`<tr><td>${name}</td><td class="${c.ok ? "ok" : "bad"}">${c.ok ? "ok" : "failing"}</td><td>${c.detail ?? ""}</td></tr>`,
)}
</table>

<h2>Runners</h2>
<div class="tiles" id="runners">
<div class="tile"><b>${s.starting}</b>starting</div><div class="tile"><b>${s.idle}</b>idle</div><div class="tile"><b>${s.busy}</b>busy</div>
<div class="tile"><b>${r.waiting.count}</b>jobs waiting</div>
</div>
<table id="classes"><tr><th>Class</th><th>Starting</th><th>Idle</th><th>Busy</th><th>Warm pool</th></tr>
${Object.entries(r.runners.byClass).map(
  ([cls, c]) =>
    html`<tr><td>${cls}</td><td>${c.starting}</td><td>${c.idle}</td><td>${c.busy}</td><td>${c.poolTarget > 0 ? `${c.idle} of ${c.poolTarget} idle` : "none"}</td></tr>`,
)}
</table>
<div class="muted">${
    r.runners.asOf === undefined
      ? "no reconcile pass yet"
      : `as of the last reconcile pass (${ago(now, r.runners.asOf)}), moved on by the dispatches and job events heard since; a runner counts as starting until a pass sees it online`
  }</div>

<h2>Jobs waiting for a runner</h2>
${
  r.waiting.count === 0
    ? html`<p id="waiting" class="muted">None: every accepted job has a runner.</p>`
    : html`<table id="waiting"><tr><th>Job</th><th>Repository</th><th>Waits for</th><th>Since</th><th>Queued</th></tr>
${r.waiting.jobs.map(
  (j) => html`<tr><td>${j.job}</td><td>${j.repo}</td><td>${j.reason}</td><td>${j.reasonSeconds} s</td><td>${j.waitingSeconds} s ago</td></tr>`,
)}
</table>${r.waiting.count > r.waiting.jobs.length ? html`<div class="muted">and ${r.waiting.count - r.waiting.jobs.length} more</div>` : ""}`
}

<h2>GitHub budget</h2>
<table id="budget"><tr><th>Budget</th><th>Free this minute</th><th>Waiting requests</th><th>Paused</th></tr>
${r.budgets.map(
  (b) =>
    html`<tr><td>${b.key}</td><td>${b.available} / ${b.pointsPerMinute}</td><td>${b.waiting}</td><td class="${b.pausedSeconds > 0 ? "bad" : ""}">${b.pausedSeconds > 0 ? `${b.pausedSeconds} s` : "no"}</td></tr>`,
)}
</table>

<h2>Last failures</h2>
${
  r.failures.length === 0
    ? html`<p id="failures" class="muted">None.</p>`
    : html`<table id="failures"><tr><th>When</th><th>Doing</th><th>System</th><th>Message</th></tr>
${[...r.failures].reverse().map((f) => html`<tr><td>${ago(now, f.at)}</td><td>${f.source}</td><td>${f.dependency ?? ""}</td><td>${f.message}${f.count && f.count > 1 ? ` (×${f.count})` : ""}</td></tr>`)}
</table>`
}
</body>
</html>`;
}
