// Cost grows with what changed (issue 10), with real parts: git, Postgres, the daemon and stand-in instances.
// A commit that touches no project writes no row; one project's change writes that project's row only; health is
// probed apart from the pass and recorded only when it changes; starts run side by side, bounded.
import { afterEach, describe, expect, it, vi } from 'vitest';
import pg from 'pg';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { DEFAULT_FLEET_YAML, writeProject } from '../harness/git.ts';
import { createProcessDriver } from '../../daemon/drivers/process.ts';
import { probeReady } from '../../daemon/health.ts';
import { createLogger } from '../../daemon/log.ts';
import type { Driver } from '../../daemon/core/types.ts';
import { join } from 'node:path';
import { Writable } from 'node:stream';

const quiet = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

/** Each row's version (Postgres xmin) and the event count: what a pass wrote shows as a difference. */
async function snapshot(f: TestFleet): Promise<{ versions: Record<string, string>; events: number }> {
  const c = new pg.Client(f.registryUrl);
  await c.connect();
  try {
    const rows = (await c.query('SELECT id, xmin::text AS v FROM projects ORDER BY id')).rows;
    const events = Number((await c.query('SELECT count(*) AS n FROM project_events')).rows[0].n);
    return { versions: Object.fromEntries(rows.map((r) => [r.id, r.v])), events };
  } finally {
    await c.end();
  }
}

/** Passes until one plans nothing new: the fleet is converged and settled. */
async function settle(f: TestFleet, commit: string): Promise<void> {
  const d = f.running!.daemon;
  await vi.waitFor(async () => {
    const r = await d.pass();
    if (!r.ok || r.commit !== commit) throw new Error(`not converged: ${JSON.stringify(r)}`);
    const before = await snapshot(f);
    await d.pass();
    expect(await snapshot(f)).toEqual(before);
  }, { timeout: 30_000, interval: 50 });
}

describe('passes cost what changed', () => {
  let f: TestFleet | null = null;
  afterEach(async () => {
    await f?.destroy();
    f = null;
  });

  it('a commit that touches no project writes no project row and no event', async () => {
    f = await createFleet();
    writeProject(f.repo, 'blog');
    writeProject(f.repo, 'shop', { manifest: { state: 'stopped' } });
    writeProject(f.repo, 'wiki', { manifest: { state: 'stopped' } });
    const c1 = f.repo.commit('three projects');
    await f.boot({ manual: true });
    await settle(f, c1);
    const before = await snapshot(f);
    f.repo.write('README.md', 'docs only\n');
    const c2 = f.repo.commit('docs');
    const r = await f.running!.daemon.pass();
    // Nothing under projects/ or in fleet.yaml changed: no project is even looked at.
    expect(r).toMatchObject({ commit: c2, ok: true, looked: 0 });
    await f.running!.daemon.pass();
    expect(await snapshot(f)).toEqual(before);
    // The fleet still knows which commit it follows.
    expect(await f.running!.daemon.registry.getState<{ commit: string }>('observed')).toMatchObject({ commit: c2 });
    // A new fleet.yaml may change what every project resolves to: that pass looks at all of them (and writes none).
    f.repo.write('fleet.yaml', DEFAULT_FLEET_YAML.replace('pollInterval: 30', 'pollInterval: 31'));
    const c3 = f.repo.commit('fleet: poll a little less often');
    expect(await f.running!.daemon.pass()).toMatchObject({ commit: c3, ok: true, looked: 3 });
    expect(await snapshot(f)).toEqual(before);
  });

  it('a commit right after projects were written does not write them again, nor does a daemon restart', async () => {
    f = await createFleet();
    writeProject(f.repo, 'shop', { manifest: { state: 'stopped' } });
    writeProject(f.repo, 'wiki', { manifest: { state: 'stopped' } });
    const c1 = f.repo.commit('two stopped projects');
    await f.boot({ manual: true });
    await vi.waitFor(async () => expect(await f!.running!.daemon.pass()).toMatchObject({ commit: c1, ok: true }), { timeout: 30_000 });
    // Both rows were just written (created); the next commit does not touch their folders.
    const before = await snapshot(f);
    f.repo.write('README.md', 'docs only\n');
    const c2 = f.repo.commit('docs');
    expect(await f.running!.daemon.pass()).toMatchObject({ commit: c2, ok: true });
    expect(await snapshot(f)).toEqual(before);
    expect((await f.project('shop'))!.observedCommit).toBe(c1);
    // A restarted daemon looks at every project once, and writes none of them; it parses no manifest again (the
    // stopped daemon left its last read, for the same trees and validator).
    await f.stopDaemon();
    await f.boot({ manual: true });
    expect(await f.running!.daemon.pass()).toMatchObject({ commit: c2, ok: true, looked: 2 });
    expect(await snapshot(f)).toEqual(before);
    expect((f.running!.daemon as unknown as { reader: { stats: { projectParses: number } } }).reader.stats.projectParses).toBe(0);
  });

  it("one project's env change writes that project's row only, and restarts only its instance", async () => {
    f = await createFleet();
    writeProject(f.repo, 'blog');
    writeProject(f.repo, 'shop');
    writeProject(f.repo, 'wiki', { manifest: { state: 'stopped' } });
    const c1 = f.repo.commit('three projects');
    await f.boot({ manual: true });
    await settle(f, c1);
    const before = await snapshot(f);
    const writes = vi.spyOn(f.running!.daemon.registry, 'updateWithEvents');
    writeProject(f.repo, 'blog', { manifest: { env: { GREETING: 'changed' } } });
    const c2 = f.repo.commit('blog: greeting');
    expect(await f.running!.daemon.pass()).toMatchObject({ commit: c2, ok: true });
    // The replacement answered /ready within the pass: one transaction for blog, none for the others.
    expect(writes.mock.calls.map(([id]) => id)).toEqual(['blog']);
    const after = await snapshot(f);
    expect(after.versions.blog).not.toBe(before.versions.blog);
    expect({ ...after.versions, blog: '' }).toEqual({ ...before.versions, blog: '' });
    expect((await f.project('blog'))!).toMatchObject({ appliedCommit: c2, status: 'running' });
  });

  it('probes health apart from the pass and records it only when it changes', async () => {
    f = await createFleet();
    const down = new Set<string>();
    const probes: string[] = [];
    const probe = async (upstream: string) => {
      probes.push(upstream);
      return down.has(upstream) ? { ok: false, status: 503, at: new Date().toISOString() } : probeReady(upstream);
    };
    writeProject(f.repo, 'blog');
    writeProject(f.repo, 'shop');
    const c1 = f.repo.commit('two projects');
    await f.boot({ manual: true, probe, healthIntervalMs: 100 });
    await settle(f, c1);
    const before = await snapshot(f);
    // Passes with nothing to do probe nothing.
    probes.length = 0;
    for (let i = 0; i < 5; i++) await f.running!.daemon.pass();
    expect(probes).toEqual([]);
    // The monitor probes on its own interval; unchanged health writes nothing.
    f.running!.daemon.start();
    await vi.waitFor(() => expect(new Set(probes).size).toBe(2), { timeout: 5_000 });
    const n = probes.length;
    await vi.waitFor(() => expect(probes.length).toBeGreaterThanOrEqual(n + 4), { timeout: 5_000 });
    expect(await snapshot(f)).toEqual(before);
    // A health change is recorded without any commit: shop's /ready fails.
    down.add((await f.project('shop'))!.upstream!);
    const shop = await f.until('shop', (p) => p.conditions.some((c) => c.type === 'Healthy' && !c.status), 10_000);
    expect(shop.lastHealth).toMatchObject({ ok: false, status: 503 });
    expect((await snapshot(f)).versions.blog).toBe(before.versions.blog);
  });

  it('starts instances side by side, never more than the configured concurrency, each on its own port', async () => {
    f = await createFleet();
    const ids = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6'];
    for (const id of ids) writeProject(f.repo, id);
    const c1 = f.repo.commit('six projects');
    const real = createProcessDriver({ stateDir: join(f.stateDir, 'instances'), log: quiet });
    let inFlight = 0;
    let most = 0;
    const driver: Driver = {
      ...real,
      name: real.name,
      async start(spec, o) {
        most = Math.max(most, ++inFlight);
        try {
          // Each start waits (up to 3 s) for a third one to be under way, so starts overlap whenever the executor
          // lets them, however slowly provisioning goes on a loaded machine; a serial executor never gets there.
          for (let waited = 0; inFlight < 3 && waited < 3000; waited += 10) await new Promise((r) => setTimeout(r, 10));
          return await real.start(spec, o);
        } finally {
          inFlight--;
        }
      },
    };
    await f.boot({ manual: true, driver, concurrency: 3 });
    await settle(f, c1);
    expect(most).toBe(3);
    const rows = await Promise.all(ids.map((id) => f!.project(id)));
    expect(rows.every((r) => r!.status === 'running')).toBe(true);
    expect(new Set(rows.map((r) => r!.port)).size).toBe(ids.length);
  });
});
