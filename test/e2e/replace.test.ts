// Start new, then retire old, with the daemon and real instance processes: a replacement serves only once it
// answers /ready, the old instance keeps serving until the registry (and so the gateway) routes away from it, and a
// replacement that never gets ready leaves the old one in place with the condition Degraded. Also: a fix committed
// during a crash loop starts at once, and stopped, deleted and removed projects say so in their conditions.
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';
import { alive, condition, pidNumber } from '../harness/instances.ts';

let f: TestFleet;
// A long crash backoff: "starts at once" must not be the backoff running out.
const BACKOFF = { baseMs: 8000, capMs: 60_000, stallAfter: 3, stableMs: 5000 };

const pidOf = async (id: string) => (await f.running!.driver.list()).find((i) => i.id === id && i.running)?.ref;

async function morePasses(n: number): Promise<void> {
  const start = f.running!.daemon.passes;
  await expect.poll(() => f.running!.daemon.passes, { timeout: 20_000 }).toBeGreaterThanOrEqual(start + n);
}

const hammers: Array<{ stop(): Promise<unknown> }> = [];

/** Requests `/ready` without pause, at a fixed upstream or wherever the registry routes the project now. */
function hammer(target: { upstream: string } | { project: string }) {
  const failures: string[] = [];
  let ok = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const upstream = 'upstream' in target ? target.upstream : (await f.project(target.project))?.upstream;
      try {
        const res = await fetch(`http://${upstream}/ready`, { signal: AbortSignal.timeout(2000) });
        if (res.status === 200) ok += 1;
        else failures.push(`${upstream}: ${res.status}`);
      } catch (err) {
        failures.push(`${upstream}: ${(err as Error).cause ?? err}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const h = {
    get ok() { return ok; },
    async stop() {
      running = false;
      await loop;
      return { ok, failures };
    },
  };
  hammers.push(h);
  return h;
}

beforeAll(async () => {
  f = await createFleet();
  for (const id of ['blog', 'halt', 'drop', 'keep', 'moved']) writeProject(f.repo, id);
  const c = f.repo.commit('five projects');
  await f.boot({ backoff: BACKOFF });
  for (const id of ['blog', 'halt', 'drop', 'keep', 'moved']) await f.until(id, (p) => p.status === 'running' && p.appliedCommit === c);
}, 120_000);
afterAll(async () => {
  for (const h of hammers) await h.stop();
  await f?.destroy();
});

it('a bad runtime.command: the running instance keeps serving, Degraded says why, retried with backoff only', async () => {
  const before = (await f.project('blog'))!;
  const pid = await pidOf('blog');
  const watch = hammer({ upstream: before.upstream! });
  writeProject(f.repo, 'blog', { manifest: { runtime: { command: ['sh', '-c', 'echo "unknown flag --servr" >&2; exit 3'] } } });
  const bad = f.repo.commit('blog: a bad runtime.command');
  const blog = await f.until('blog', (p) => p.observedCommit === bad && condition(p, 'Degraded')?.status === true);
  const degraded = condition(blog, 'Degraded')!;
  expect(degraded.reason).toBe('ReplacementNotReady');
  expect(degraded.message).toMatch(/exited with code 3/);
  expect(degraded.message).toContain(join(f.stateDir, 'projects', 'blog', 'logs', 'instance.log'));
  expect(blog).toMatchObject({ status: 'running', upstream: before.upstream, appliedCommit: before.appliedCommit });
  expect(condition(blog, 'Healthy')?.status).toBe(true);
  expect(condition(blog, 'Ready')).toMatchObject({ status: false, reason: 'ReplacementNotReady' });
  await morePasses(8);
  expect(await pidOf('blog')).toBe(pid);
  expect((await f.project('blog'))!.upstream).toBe(before.upstream);
  const { ok, failures } = await watch.stop();
  expect(failures).toEqual([]);
  expect(ok).toBeGreaterThan(10);
  // The same failed spec waits out its backoff (8 s here): one attempt, not one per pass.
  const attempts = (await f.running!.daemon.registry.events('blog'))
    .filter((e) => e.commit === bad && e.action === 'error' && (e.detail as { code?: string })?.code === 'REPLACEMENT_NOT_READY');
  expect(attempts).toHaveLength(1);
});

it('a good change: requests through the registry upstream never fail during the switch; the old pid is gone after', async () => {
  const pid = await pidOf('blog');
  const before = (await f.project('blog'))!;
  const watch = hammer({ project: 'blog' });
  writeProject(f.repo, 'blog', { manifest: { env: { ATOMO_COMMIT: 'v2' } } });
  const c = f.repo.commit('blog: fix the command, new env');
  const blog = await f.until('blog', (p) => p.appliedCommit === c && p.status === 'running');
  expect((await f.get('blog', '/version')).body.commit).toBe('v2');
  expect(blog.upstream).not.toBe(before.upstream);
  expect(condition(blog, 'Degraded')?.status).toBe(false);
  expect(condition(blog, 'Ready')).toMatchObject({ status: true, reason: 'Converged' });
  await vi.waitFor(() => expect(alive(pidNumber(pid))).toBe(false), { timeout: 15_000, interval: 100 });
  const okAtRetire = watch.ok;
  await expect.poll(() => watch.ok, { timeout: 10_000 }).toBeGreaterThan(okAtRetire + 10);
  const { failures } = await watch.stop();
  expect(failures).toEqual([]);
  expect(await pidOf('blog')).not.toBe(pid);
  const starts = (await f.events('blog')).filter((e) => e.commit === c && ['start', 'restart'].includes(e.action));
  expect(starts).toHaveLength(1);
});

it('crash loop, then a fixed manifest: the fix starts at once, not after the backoff', async () => {
  writeProject(f.repo, 'crashy', { manifest: { env: { STANDIN_FAIL_AT_BOOT: '1' } } });
  f.repo.commit('add crashy, which fails at boot');
  await f.until('crashy', (p) => condition(p, 'Ready')?.reason === 'BackOff' && /next start in [5-8] s/.test(p.lastError ?? ''));
  writeProject(f.repo, 'crashy');
  const t0 = Date.now();
  const fix = f.repo.commit('crashy: fixed');
  const crashy = await f.until('crashy', (p) => p.appliedCommit === fix && p.status === 'running', 20_000);
  const took = Date.now() - t0;
  expect(took).toBeLessThan(4000);
  expect(condition(crashy, 'Stalled')?.status).toBe(false);
});

it('stopped, deleted and removed projects say so: no Healthy left over, Ready=False with the reason', async () => {
  writeProject(f.repo, 'halt', { manifest: { state: 'stopped' } });
  writeProject(f.repo, 'drop', { manifest: { state: 'deleted', deletion: { confirm: 'drop', dropDatabase: true } } });
  writeProject(f.repo, 'keep', { manifest: { state: 'deleted', deletion: { confirm: 'keep' } } });
  f.repo.remove('projects/moved');
  const c = f.repo.commit('stop halt, delete drop and keep, remove moved');

  const halt = await f.until('halt', (p) => p.status === 'stopped' && p.appliedCommit === c);
  expect(condition(halt, 'Ready')).toMatchObject({ status: false, reason: 'Stopped' });
  expect(condition(halt, 'Healthy')?.status).not.toBe(true);

  const drop = await f.until('drop', (p) => p.status === 'deleted' && p.appliedCommit === c);
  expect(condition(drop, 'Ready')).toMatchObject({ status: false, reason: 'Deleted' });
  expect(condition(drop, 'Ready')!.message).toMatch(/database atomo_drop dropped/);
  expect(condition(drop, 'Ready')!.message).not.toMatch(/kept/);
  expect(condition(drop, 'Healthy')?.status).not.toBe(true);

  const keep = await f.until('keep', (p) => p.status === 'deleted' && p.appliedCommit === c);
  expect(condition(keep, 'Ready')).toMatchObject({ status: false, reason: 'Deleted' });
  expect(condition(keep, 'Ready')!.message).toMatch(/database atomo_keep kept/);
  expect(condition(keep, 'Healthy')?.status).not.toBe(true);

  const moved = await f.until('moved', (p) => p.status === 'stopped' && !p.present && p.observedCommit === c);
  expect(condition(moved, 'Ready')).toMatchObject({ status: false, reason: 'FolderRemoved' });
  expect(condition(moved, 'Healthy')?.status).not.toBe(true);

  // Later passes leave it so.
  await morePasses(3);
  for (const id of ['halt', 'drop', 'keep', 'moved']) expect(condition((await f.project(id))!, 'Healthy')?.status).not.toBe(true);
});
