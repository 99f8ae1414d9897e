// The dashboard's pages: pure functions from data to an HTML string (golden-file tested). No script, no build
// step: a table per page, a meta refresh, and every value escaped by the `html` template.
import type { Condition, RegistryRow } from '../core/types.ts';
import type { ProjectEvent } from '../registry/registry.ts';
import { scrubText } from '../log.ts';
import { ago } from './age.ts';
import { Html, html, raw } from './html.ts';
import { databaseText, driftText, healthText, problemOf, shortCommit, stateText, type ProjectView } from './view.ts';

export type DashboardProject = ProjectView & Pick<RegistryRow, 'displayName' | 'hostname' | 'aliases' | 'updatedAt'>
  /** Set while an operator keeps the project as it is (`fleet suspend`). */
  & { suspended?: { by: string; at: string } | null }
  /** The fleet.yaml Postgres server holding the database, and the one holding the copy a move left (if any). */
  & { databaseServer?: string; oldDatabaseServer?: string | null };

/** An event as the registry keeps it; the page does not need its id. */
export type DashboardEvent = Omit<ProjectEvent, 'id'>;

/** How project hostnames are reached through the gateway (fleet.yaml gateway.listen and tls). */
export interface GatewayLinks {
  scheme: 'http' | 'https';
  /** Left out of links when it is the scheme's default. */
  port?: number;
}

export interface FleetPageData {
  now: Date;
  refreshSeconds: number;
  projects: DashboardProject[];
  /** Newest first. */
  events: DashboardEvent[];
  last: { commit: string | null; ok: boolean; error?: string };
  source?: { ok: boolean; message?: string; commit?: string; at?: string } | null;
  invalid?: { commit: string; projects: { id: string; issues: string[] }[] } | null;
  links: GatewayLinks;
}

export interface ProjectPageData {
  now: Date;
  refreshSeconds: number;
  project: DashboardProject & { schemaVersion?: string | null };
  /** Newest first. */
  events: DashboardEvent[];
  /** The instance log's last lines, oldest first; null when the driver cannot read logs. */
  logLines: string[] | null;
  links: GatewayLinks;
}

const STYLE = raw(`<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1b1f24;background:#fff}
h1{font-size:1.3rem;margin:0 0 .25rem}h2{font-size:1.05rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #d8dee4;vertical-align:top}
th{background:#f6f8fa;font-weight:600}code,pre{font:12px/1.4 ui-monospace,monospace}
pre{background:#0d1117;color:#e6edf3;padding:.75rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}.muted{color:#656d76}.banner{padding:.5rem .75rem;border-radius:4px;margin:.5rem 0}
.banner.bad{background:#ffebe9}.banner.ok{background:#dafbe1}nav{display:flex;gap:1rem;align-items:baseline;margin-bottom:1rem}
nav form{margin-left:auto}.facts th{width:12rem}
</style>`);

function page(title: string, refreshSeconds: number | null, body: Html): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refreshSeconds ? html`<meta http-equiv="refresh" content="${refreshSeconds}">` : ''}
<title>${title}</title>
${STYLE}
</head>
<body>
${body}
</body>
</html>
`.value;
}

function nav(now: Date, refreshSeconds: number): Html {
  return html`<nav><a href="/"><strong>atomo fleet</strong></a><span class="muted">as of ${now.toISOString()}, refreshed every ${refreshSeconds} s</span>
<form method="post" action="/logout"><button type="submit">Log out</button></form></nav>`;
}

// Hostnames are validated before they reach the registry; a link is still made only from a plain host name, so
// nothing a row holds can become a `javascript:` URL or leave the host part.
const PLAIN_HOST = /^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/i;

function hostLink(host: string, links: GatewayLinks): Html {
  if (!PLAIN_HOST.test(host)) return html`<code>${host}</code>`;
  const port = links.port && links.port !== (links.scheme === 'https' ? 443 : 80) ? `:${links.port}` : '';
  return html`<a href="${links.scheme}://${host.toLowerCase()}${port}/">${host}</a>`;
}

function hostLinks(p: DashboardProject, links: GatewayLinks): Html {
  const hosts = [p.hostname, ...(p.aliases ?? [])].filter((h): h is string => !!h);
  return hosts.length ? html`${hosts.map((h, i) => html`${i ? html`<br>` : ''}${hostLink(h, links)}`)}` : html`<span class="muted">-</span>`;
}

function suspendedNote(p: DashboardProject, now: Date): Html | '' {
  return p.suspended ? html`<br><span class="bad">suspended by ${p.suspended.by}, ${ago(p.suspended.at, now)}</span>` : '';
}

const projectHref = (id: string) => `/projects/${encodeURIComponent(id)}`;

function conditionsCell(conditions: Condition[], now: Date): Html {
  if (!conditions.length) return html`<span class="muted">-</span>`;
  return html`${conditions.map((c, i) => html`${i ? html`<br>` : ''}<span class="${c.status === (c.type === 'Stalled' || c.type === 'Invalid' || c.type === 'Degraded') ? 'bad' : 'ok'}" title="${c.message}">${c.type}=${String(c.status)}</span> <span class="muted">${c.reason}, ${ago(c.at, now)}</span>`)}`;
}

function healthCell(p: DashboardProject, now: Date): Html {
  const text = healthText(p, now);
  return html`<span class="${p.lastHealth ? (p.lastHealth.ok ? 'ok' : 'bad') : 'muted'}">${text}</span>`;
}

/** Event details are data the daemon wrote (never secret values); long ones are cut. */
function detailText(detail: Record<string, unknown> | null): string {
  if (!detail) return '';
  const text = scrubText(JSON.stringify(detail));
  return text.length > 300 ? `${text.slice(0, 299)}…` : text;
}

function eventsTable(events: DashboardEvent[], now: Date, withProject: boolean): Html {
  if (!events.length) return html`<p class="muted">No events yet.</p>`;
  return html`<table>
<thead><tr><th>when</th>${withProject ? html`<th>project</th>` : ''}<th>action</th><th>actor</th><th>commit</th><th>detail</th></tr></thead>
<tbody>
${events.map((e) => html`<tr><td title="${e.at}">${ago(e.at, now)}</td>${withProject ? html`<td><a href="${projectHref(e.projectId)}">${e.projectId}</a></td>` : ''}<td>${e.action}</td><td>${e.actor ?? '-'}</td><td><code>${shortCommit(e.commit)}</code></td><td><code>${detailText(e.detail)}</code></td></tr>
`)}</tbody>
</table>`;
}

export function renderFleetPage(d: FleetPageData): string {
  const banners: Html[] = [];
  banners.push(d.last.ok
    ? html`<div class="banner ok">Last pass converged${d.last.commit ? html` at <code>${shortCommit(d.last.commit)}</code>` : ''}.</div>`
    : html`<div class="banner bad">Last pass failed${d.last.commit ? html` at <code>${shortCommit(d.last.commit)}</code>` : ''}: ${d.last.error ?? 'see the daemon log'}</div>`);
  if (d.source && !d.source.ok) {
    banners.push(html`<div class="banner bad">Git source unavailable since ${ago(d.source.at, d.now)}: converging on <code>${shortCommit(d.source.commit)}</code>: ${d.source.message ?? ''}</div>`);
  }
  if (d.invalid?.projects.length) {
    banners.push(html`<div class="banner bad">Invalid at <code>${shortCommit(d.invalid.commit)}</code> (these keep what was last applied):<ul>${d.invalid.projects.map((p) => html`<li><a href="${projectHref(p.id)}">${p.id}</a>: ${p.issues[0] ?? ''}</li>`)}</ul></div>`);
  }
  const rows = d.projects.map((p) => {
    const problem = problemOf(p);
    return html`<tr>
<td><a href="${projectHref(p.id)}"><strong>${p.id}</strong></a><br><span class="muted">${p.displayName}</span></td>
<td>${stateText(p)}${suspendedNote(p, d.now)}</td>
<td>${healthCell(p, d.now)}</td>
<td><code>${shortCommit(p.appliedCommit)}</code></td>
<td class="${driftText(p) === 'no' ? '' : 'bad'}">${driftText(p)}</td>
<td>${conditionsCell(p.conditions, d.now)}${problem ? html`<br><span class="bad">${problem.reason}: ${problem.message}</span>` : (p.lastError ? html`<br><span class="bad">${p.lastError}</span>` : '')}</td>
<td>${hostLinks(p, d.links)}</td>
</tr>
`;
  });
  return page('atomo fleet', d.refreshSeconds, html`${nav(d.now, d.refreshSeconds)}
<h1>Fleet: ${d.projects.length} project${d.projects.length === 1 ? '' : 's'}</h1>
${banners}
${d.projects.length ? html`<table>
<thead><tr><th>project</th><th>state</th><th>health</th><th>applied</th><th>drift</th><th>conditions</th><th>hostnames</th></tr></thead>
<tbody>
${rows}</tbody>
</table>` : html`<p class="muted">No projects registered yet: add a folder under projects/ and commit it.</p>`}
<h2>Last events</h2>
${eventsTable(d.events, d.now, true)}`);
}

// Colour codes and control characters in an instance's output: dropped or made visible, never passed on.
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/g;

/** One log line as the page shows it: no terminal codes, no control characters, URL passwords scrubbed, cut at 2,000. */
export function cleanLogLine(line: string): string {
  const text = scrubText(line.replace(ANSI, '').replace(CONTROL, '\uFFFD'));
  return text.length > 2000 ? `${text.slice(0, 1999)}…` : text;
}

export function renderProjectPage(d: ProjectPageData): string {
  const p = d.project;
  const facts: [string, Html | string][] = [
    ['display name', p.displayName],
    ['state', html`${stateText(p)}${suspendedNote(p, d.now)}`],
    ['health', healthCell(p, d.now)],
    ['applied commit', html`<code>${shortCommit(p.appliedCommit)}</code>`],
    ['observed commit', html`<code>${shortCommit(p.observedCommit)}</code>`],
    ['drift', driftText(p)],
    ['hostnames', hostLinks(p, d.links)],
    // Only when it is not the default server, or a move left a copy behind.
    ...(databaseText(p) ? [['database', databaseText(p)] as [string, string]] : []),
    ['last error', p.lastError ?? '-'],
    ['updated', html`<span title="${p.updatedAt}">${ago(p.updatedAt, d.now)}</span>`],
  ];
  return page(`${p.id}: atomo fleet`, d.refreshSeconds, html`${nav(d.now, d.refreshSeconds)}
<h1>${p.id}</h1>
<table class="facts">
<tbody>
${facts.map(([k, v]) => html`<tr><th>${k}</th><td>${v}</td></tr>
`)}</tbody>
</table>
<h2>Conditions</h2>
${p.conditions.length ? html`<table>
<thead><tr><th>type</th><th>status</th><th>reason</th><th>message</th><th>since</th></tr></thead>
<tbody>
${p.conditions.map((c) => html`<tr><td>${c.type}</td><td>${String(c.status)}</td><td>${c.reason}</td><td>${c.message}</td><td title="${c.at}">${ago(c.at, d.now)}</td></tr>
`)}</tbody>
</table>` : html`<p class="muted">No conditions recorded.</p>`}
<h2>Events</h2>
${eventsTable(d.events, d.now, false)}
<h2>Instance log</h2>
${d.logLines === null ? html`<p class="muted">This driver cannot read instance logs.</p>`
    : d.logLines.length ? html`<pre>${d.logLines.map((l) => `${cleanLogLine(l)}\n`).join('')}</pre>` : html`<p class="muted">The instance has not logged anything yet.</p>`}`);
}

export function renderLoginPage(d: { error?: string; next?: string; configured: boolean }): string {
  return page('Log in: atomo fleet', null, html`<h1>atomo fleet</h1>
<p>Log in with the operator token (the secret store's <code>&lt;prefix&gt;/fleet/OPERATOR_TOKEN</code>; a dev daemon prints it once at its first start).</p>
${d.configured ? '' : html`<div class="banner bad">This daemon has no operator token, so nobody can log in: set <code>&lt;prefix&gt;/fleet/OPERATOR_TOKEN</code> in the secret store and restart the daemon.</div>`}
${d.error ? html`<div class="banner bad" role="alert">${d.error}</div>` : ''}
<form method="post" action="/login">
<input type="hidden" name="next" value="${d.next ?? '/'}">
<label>Operator token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Log in</button>
</form>`);
}
