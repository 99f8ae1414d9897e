// /metrics of a real daemon (git, Postgres, stand-in instances): the operator token is required, the names and
// labels follow Prometheus conventions, values follow the fleet, and the shipped Grafana dashboard asks only for
// series the daemon really exports.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RunningDaemon } from '../../daemon/boot.ts';
import { rotateSecret } from '../../scripts/commands/secrets.ts';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { DEFAULT_FLEET_YAML, writeProject } from '../harness/git.ts';
import { startReceiver, type Receiver } from '../harness/receiver.ts';
import { createLocalSecretStore } from '../../daemon/secrets/local.ts';
import { join } from 'node:path';
import { parseExposition, type Exposition } from '../harness/prom.ts';

const DASHBOARD = fileURLToPath(new URL('../../ops/grafana/fleet-dashboard.json', import.meta.url));

async function morePasses(d: RunningDaemon, n: number): Promise<void> {
  const start = d.daemon.passes;
  await expect.poll(() => d.daemon.passes, { timeout: 20_000 }).toBeGreaterThanOrEqual(start + n);
}

/** Every PromQL query of a Grafana dashboard: panel targets' `expr`, and query variables' queries. */
function exprsOf(dashboard: any): string[] {
  const targets = (panels: any[]): string[] => panels.flatMap((p) => [...(p.targets ?? []).map((t: any) => t.expr), ...targets(p.panels ?? [])]);
  const vars = (dashboard.templating?.list ?? []).filter((v: any) => v.type === 'query').map((v: any) => (typeof v.query === 'string' ? v.query : v.query.query));
  return [...targets(dashboard.panels ?? []), ...vars].filter((e): e is string => typeof e === 'string');
}

describe('/metrics of a real daemon', () => {
  let f: TestFleet;
  let token: string;
  let c1: string;
  let rx: Receiver;
  const scrape = async (): Promise<Exposition> => {
    const res = await fetch(`${f.running!.httpUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseExposition(await res.text());
  };

  beforeAll(async () => {
    // A notification receiver too, so the notification series have samples.
    rx = await startReceiver();
    f = await createFleet();
    f.repo.write('fleet.yaml', `${DEFAULT_FLEET_YAML}notify:\n  webhooks:\n    - name: ops\n      urlSecret: /atomo/fleet/OPS_WEBHOOK_URL\n`);
    await createLocalSecretStore({ dir: join(f.stateDir, 'secrets'), prefix: '/atomo' }).put('/atomo/fleet/OPS_WEBHOOK_URL', `${rx.url}/ops`);
    writeProject(f.repo, 'blog');
    c1 = f.repo.commit('add blog');
    await f.boot();
    await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === c1);
    token = await f.running!.secrets.get('/atomo/fleet/OPERATOR_TOKEN');
  });
  afterAll(async () => {
    await f?.destroy();
    await rx?.close();
  });

  it('answers 401 without the operator token, or with a wrong one', async () => {
    const none = await fetch(`${f.running!.httpUrl}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await none.text()).not.toContain('fleet_');
    const wrong = await fetch(`${f.running!.httpUrl}/metrics`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
  });

  it('after passes: reconcile, git and per-project series with the fleet\'s values', async () => {
    await morePasses(f.running!, 2);
    const m = await scrape();
    expect(m.types.get('fleet_reconcile_duration_seconds')).toBe('histogram');
    expect(m.types.get('fleet_reconcile_passes_total')).toBe('counter');
    expect(m.value('fleet_reconcile_passes_total', { result: 'ok' })).toBeGreaterThanOrEqual(2);
    expect(m.value('fleet_reconcile_duration_seconds_count', { result: 'ok' })).toBeGreaterThanOrEqual(2);
    expect(m.value('fleet_reconcile_duration_seconds_bucket', { result: 'ok', le: '+Inf' })).toBe(m.value('fleet_reconcile_duration_seconds_count', { result: 'ok' }));
    expect(m.value('fleet_reconcile_last_success_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 600);
    expect(m.value('fleet_git_fetch_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(m.value('fleet_git_fetch_failures_total')).toBe(0);
    expect(m.value('fleet_project_state', { project: 'blog', state: 'running' })).toBe(1);
    expect(m.find('fleet_project_state', { project: 'blog' }).filter((s) => s.value === 1)).toHaveLength(1);
    expect(m.value('fleet_project_condition', { project: 'blog', type: 'Ready' })).toBe(1);
    expect(m.value('fleet_project_condition', { project: 'blog', type: 'Stalled' })).toBe(0);
    expect(m.value('fleet_project_info', { project: 'blog', hostname: 'blog.localhost', commit: c1 })).toBe(1);
    expect(m.value('fleet_instance_restarts_total', { project: 'blog' })).toBe(0);
    expect(m.value('fleet_secret_rotations_total', { project: 'blog' })).toBe(0);
    expect(m.value('process_resident_memory_bytes')).toBeGreaterThan(0);
    await expect.poll(async () => (await scrape()).value('fleet_notifications_total', { receiver: 'ops', result: 'sent' }), { timeout: 20_000 }).toBe(1);
    // Names: fleet_ prefix, counters end in _total, no unit-less durations.
    for (const [name, type] of m.types) {
      if (!name.startsWith('process_')) expect(name).toMatch(/^fleet_[a-z0-9_]+$/);
      if (type === 'counter') expect(name).toMatch(/_total$/);
      if (/duration|time/.test(name)) expect(name).toMatch(/_seconds$/);
    }
  });

  it('follows a secret rotation and a backup', async () => {
    await rotateSecret({ registry: f.running!.daemon.registry, secrets: f.running!.secrets, project: 'blog', name: 'JWT_SECRET', actor: 'test' });
    await expect.poll(async () => (await scrape()).value('fleet_secret_rotations_total', { project: 'blog' }), { timeout: 20_000 }).toBe(1);
    await f.running!.daemon.backups.run('blog', 2);
    const m = await scrape();
    expect(m.value('fleet_backup_last_success_timestamp_seconds', { project: 'blog' })).toBeGreaterThan(Date.now() / 1000 - 600);
    expect(m.value('fleet_backups_total', { result: 'ok' })).toBe(1);
  });

  it('the Grafana dashboard asks only for series the daemon exports, with labels they have', async () => {
    const m = await scrape();
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
    expect(dashboard.title).toMatch(/fleet/i);
    const exprs = exprsOf(dashboard);
    expect(exprs.length).toBeGreaterThan(8);
    // A family is exported when the daemon declares it (TYPE), with or without samples yet; a histogram's series
    // carry _bucket, _sum and _count.
    const family = (name: string) => (m.types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, ''));
    const exported = new Set([...m.types.keys()]);
    const used = new Set<string>();
    for (const expr of exprs) {
      const inExpr = new Set<string>();
      const names = [...expr.matchAll(/\b((?:fleet|process)_[a-z0-9_]+)\b(\{[^}]*\})?/g)];
      expect(names.length, expr).toBeGreaterThan(0);
      for (const [, name, braces] of names) {
        expect(exported.has(family(name)), `${name} in ${expr}`).toBe(true);
        used.add(family(name));
        inExpr.add(family(name));
        const labels = [...(braces ?? '').matchAll(/([a-z_]+)\s*(=~|!=|!~|=)/g)].map((l) => l[1]);
        const have = new Set(m.find(name).flatMap((s) => Object.keys(s.labels)));
        for (const l of labels) expect(have.has(l), `label ${l} of ${name} in ${expr}`).toBe(true);
      }
      for (const by of expr.matchAll(/\bby\s*\(([^)]*)\)/g)) {
        const all = new Set(m.samples.filter((s) => inExpr.has(family(s.name))).flatMap((s) => Object.keys(s.labels)));
        for (const l of by[1].split(',').map((x) => x.trim()).filter(Boolean)) expect(all.has(l), `by (${l}) in ${expr}`).toBe(true);
      }
    }
    // Every fleet_ family the daemon exports has a panel.
    const families = [...m.types.keys()].filter((n) => n.startsWith('fleet_'));
    const missing = families.filter((fam) => !used.has(fam));
    expect(missing).toEqual([]);
  });
});
