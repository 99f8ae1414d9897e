// The dashboard's pages as pure functions: golden files for a fleet, a project and the login form, and hostile
// values (display names, hostnames, conditions, events, log lines) that must come out as text, never markup.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cleanLogLine, renderFleetPage, renderLoginPage, renderProjectPage, type DashboardEvent, type DashboardProject, type FleetPageData } from '../daemon/dashboard/render.ts';
import { escapeHtml, html } from '../daemon/dashboard/html.ts';
import { ago } from '../daemon/dashboard/age.ts';

const now = new Date('2026-05-01T12:00:00.000Z');
const before = (s: number) => new Date(now.getTime() - s * 1000).toISOString();
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

const blog: DashboardProject = {
  id: 'blog', displayName: 'Blog', status: 'running', desiredState: 'running', present: true,
  hostname: 'blog.localhost', aliases: ['www.blog.localhost'], lastHealth: { ok: true, status: 200, at: before(12) },
  appliedCommit: A, observedCommit: A, lastError: null, updatedAt: before(30),
  conditions: [
    { type: 'Ready', status: true, reason: 'Started', message: 'instance ready', at: before(90) },
    { type: 'Healthy', status: true, reason: 'Ready', message: '/ready answered 200', at: before(12) },
  ],
};
const shop: DashboardProject = {
  id: 'shop', displayName: 'Shop', status: 'failed', desiredState: 'running', present: true,
  hostname: 'shop.localhost', aliases: [], lastHealth: { ok: false, error: 'ECONNREFUSED', at: before(200) },
  appliedCommit: A, observedCommit: B, lastError: 'instance exited 3 time(s) in a row', updatedAt: before(5),
  conditions: [{ type: 'Stalled', status: true, reason: 'CrashLoopBackOff', message: 'exited 3 times in a row', at: before(7200) }],
};
const paused: DashboardProject = { ...blog, id: 'wiki', displayName: 'Wiki', suspended: { by: 'ada', at: before(300) } };
const old: DashboardProject = {
  id: 'old', displayName: 'Old', status: 'stopped', desiredState: 'stopped', present: false,
  hostname: null, aliases: [], lastHealth: null, appliedCommit: A, observedCommit: B, lastError: null, updatedAt: before(90000), conditions: [],
};
const events: DashboardEvent[] = [
  { projectId: 'shop', action: 'restart', actor: 'daemon', commit: B, detail: { cause: 'crash', failures: 3 }, at: before(20) },
  { projectId: 'blog', action: 'create', actor: 'Ada <ada@example.com>', commit: A, detail: null, at: before(3600) },
];

const fleet = (over: Partial<FleetPageData> = {}): FleetPageData => ({
  now, refreshSeconds: 5, projects: [blog, shop, paused, old], events, last: { commit: A, ok: true },
  source: null, invalid: null, links: { scheme: 'http', port: 8080 }, ...over,
});

describe('dashboard pages (golden files)', () => {
  it('the fleet', async () => {
    await expect(renderFleetPage(fleet())).toMatchFileSnapshot('__snapshots__/dashboard/fleet.html');
  });

  it('a fleet with a failed pass, an unavailable source and an invalid project, behind https on 443', async () => {
    await expect(renderFleetPage(fleet({
      last: { commit: B, ok: false, error: 'registry database is unreachable: ECONNREFUSED' },
      source: { ok: false, message: 'fetch failed: 401', commit: A, at: before(600) },
      invalid: { commit: B, projects: [{ id: 'wiki', issues: ['projects/wiki/project.yaml:3:11: /hostname: must match format "hostname"'] }] },
      links: { scheme: 'https', port: 443 },
    }))).toMatchFileSnapshot('__snapshots__/dashboard/fleet-problems.html');
  });

  it('an empty fleet', async () => {
    await expect(renderFleetPage(fleet({ projects: [], events: [] }))).toMatchFileSnapshot('__snapshots__/dashboard/fleet-empty.html');
  });

  it('a project with its events and log', async () => {
    await expect(renderProjectPage({
      now, refreshSeconds: 5, project: shop, events, links: { scheme: 'http', port: 8080 },
      logLines: ['stand-in listening on 127.0.0.1:4101', '\x1b[31merror\x1b[0m: connect postgres://atomo_shop:s3cret@127.0.0.1/atomo_shop failed', 'bell\x07 done'],
    })).toMatchFileSnapshot('__snapshots__/dashboard/project.html');
  });

  it('a project whose driver reads no logs, and one that logged nothing', () => {
    const base = { now, refreshSeconds: 5, project: blog, events: [], links: { scheme: 'http', port: 80 } as const };
    expect(renderProjectPage({ ...base, logLines: null })).toContain('This driver cannot read instance logs.');
    expect(renderProjectPage({ ...base, logLines: [] })).toContain('The instance has not logged anything yet.');
    expect(renderProjectPage({ ...base, logLines: [] })).toContain('<a href="http://blog.localhost/">blog.localhost</a>');
  });

  it('the login form', async () => {
    await expect(renderLoginPage({ configured: true, next: '/projects/blog' })).toMatchFileSnapshot('__snapshots__/dashboard/login.html');
    expect(renderLoginPage({ configured: false })).toContain('This daemon has no operator token');
    expect(renderLoginPage({ configured: true, error: 'that is not the operator token' })).toContain('role="alert">that is not the operator token<');
  });
});

describe('escaping', () => {
  it.each([
    ['<script>alert(1)</script>', '&lt;script&gt;alert(1)&lt;/script&gt;'],
    ['" onmouseover="x', '&quot; onmouseover=&quot;x'],
    ["' autofocus onfocus='x", '&#39; autofocus onfocus=&#39;x'],
    ['a & b', 'a &amp; b'],
  ])('%s', (input, want) => {
    expect(escapeHtml(input)).toBe(want);
    expect(html`<p title="${input}">${input}</p>`.value).toBe(`<p title="${want}">${want}</p>`);
  });

  it('log lines lose terminal codes and control characters, and URL passwords', () => {
    expect(cleanLogLine('\x1b[1;32mok\x1b[0m\x00\x1b]0;title\x07')).toBe('ok\uFFFD\uFFFD]0;title\uFFFD');
    expect(cleanLogLine('postgres://u:pw@h/db')).toBe('postgres://u:***@h/db');
    expect(cleanLogLine('x'.repeat(5000))).toHaveLength(2000);
  });

  it.each([
    [before(0), '0s ago'], [before(59), '59s ago'], [before(60), '1m ago'], [before(3599), '59m ago'], [before(3600), '1h ago'],
    [before(86400 * 3), '3d ago'], [new Date(now.getTime() + 5000).toISOString(), '0s ago'], ['garbage', '-'], [null, '-'],
  ])('ago(%s) → %s', (at, want) => {
    expect(ago(at, now)).toBe(want);
  });

  // Whatever a project's folder or its instance says, it reaches the page as text: no element, attribute or URL
  // of its own. Every hostile value carries a marker tag and attribute; neither may appear as markup.
  it('hostile values anywhere never become markup', () => {
    const hostile = fc.string({ maxLength: 40 }).map((s) => `<x-evil y-evil="1">${s}" y-evil='2' javascript:alert(1)//`);
    fc.assert(fc.property(hostile, hostile, hostile, hostile, (name, host, line, msg) => {
      const evil: DashboardProject = {
        ...shop, id: name, displayName: name, hostname: host, aliases: [host, msg], lastError: msg, suspended: { by: msg, at: msg },
        lastHealth: { ok: false, error: msg, at: msg },
        conditions: [{ type: 'Stalled', status: true, reason: msg, message: msg, at: msg }],
      };
      const evs: DashboardEvent[] = [{ projectId: name, action: msg, actor: msg, commit: msg, detail: { x: msg }, at: msg }];
      const pages = [
        renderFleetPage(fleet({
          projects: [evil], events: evs, last: { commit: msg, ok: false, error: msg },
          source: { ok: false, message: msg, commit: msg, at: msg }, invalid: { commit: msg, projects: [{ id: name, issues: [msg] }] },
        })),
        renderProjectPage({ now, refreshSeconds: 5, project: evil, events: evs, logLines: [line, msg], links: { scheme: 'http' } }),
        renderLoginPage({ configured: true, error: msg, next: msg }),
      ];
      for (const out of pages) {
        expect(out).not.toMatch(/<x-evil/i);
        expect(out).not.toMatch(/y-evil=["']/);
        expect(out).not.toMatch(/href="javascript:/i);
      }
    }), { numRuns: 300 });
  });
});
