// The daemon under bad input and faults, with real parts: git, Postgres, the daemon in-process, stand-in instances.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHmac } from 'node:crypto';
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { bootDaemon, type RunningDaemon } from '../../daemon/boot.ts';
import { createLogger } from '../../daemon/log.ts';
import { checkFleetConfig } from '../../daemon/manifest/fleet-config.ts';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { DEFAULT_FLEET_YAML, writeProject } from '../harness/git.ts';
import { alive, condition, pidNumber } from '../harness/instances.ts';

const pidOf = async (f: TestFleet, id: string) => (await f.running!.driver.list()).find((i) => i.id === id && i.running)?.ref;
const events = (f: TestFleet, id: string) => f.running!.daemon.registry.events(id);
const parsed = (lines: string[]) => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
/** Messages of log lines that name a project but not the commit. */
const withoutCommit = (lines: string[]) => parsed(lines).filter((l) => typeof l.project === 'string' && typeof l.commit !== 'string').map((l) => l.msg);

/** Wait until the daemon has run `n` more passes: "nothing happened" is checked after the loop really looked. */
async function morePasses(d: RunningDaemon, n: number): Promise<void> {
  const start = d.daemon.passes;
  await expect.poll(() => d.daemon.passes, { timeout: 20_000 }).toBeGreaterThanOrEqual(start + n);
}

async function httpStatus(upstream: string, path: string): Promise<number> {
  return (await fetch(`http://${upstream}${path}`)).status;
}

describe('invalid manifests: the project keeps running as last applied, the others converge', () => {
  let f: TestFleet;
  let c1: string;

  beforeAll(async () => {
    f = await createFleet();
    writeProject(f.repo, 'blog');
    writeProject(f.repo, 'shop');
    c1 = f.repo.commit('add blog and shop');
    await f.boot();
    await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === c1);
    await f.until('shop', (p) => p.status === 'running' && p.appliedCommit === c1);
  });
  afterAll(async () => {
    await f?.destroy();
  });

  it('an unknown key in blog: blog runs on untouched with Invalid and one event; shop converges in the same commit; a fix clears it', async () => {
    const blogPid = await pidOf(f, 'blog');
    const blogUpstream = (await f.project('blog'))!.upstream;
    const shopPid = await pidOf(f, 'shop');
    writeProject(f.repo, 'blog', { manifest: { colour: 'blue' } });
    writeProject(f.repo, 'shop', { manifest: { env: { GREETING: 'hello' } } });
    const c2 = f.repo.commit('blog: unknown key; shop: new env');
    const shop = await f.until('shop', (p) => p.appliedCommit === c2 && p.status === 'running');
    expect(shop.env).toEqual({ GREETING: 'hello' });
    expect(await pidOf(f, 'shop')).not.toBe(shopPid);
    const blog = await f.until('blog', (p) => p.observedCommit === c2 && condition(p, 'Invalid')?.status === true);
    expect(condition(blog, 'Invalid')).toMatchObject({ reason: 'InvalidManifest' });
    expect(condition(blog, 'Invalid')!.message).toMatch(/projects\/blog\/project\.yaml.*colour/);
    expect(blog).toMatchObject({ status: 'running', appliedCommit: c1, upstream: blogUpstream });
    expect(await pidOf(f, 'blog')).toBe(blogPid);
    expect(await httpStatus(blogUpstream!, '/ready')).toBe(200);
    // Later passes see the same invalid commit: still exactly one event for it.
    await morePasses(f.running!, 3);
    const invalid = (await events(f, 'blog')).filter((e) => e.action === 'invalid');
    expect(invalid.map((e) => e.commit)).toEqual([c2]);

    writeProject(f.repo, 'blog');
    const c3 = f.repo.commit('blog: drop the unknown key');
    const fixed = await f.until('blog', (p) => p.appliedCommit === c3);
    expect(condition(fixed, 'Invalid')).toBeUndefined();
    expect(await pidOf(f, 'blog')).toBe(blogPid);
  });

  it('a project invalid from its first commit: nothing is registered, nothing runs, the others converge', async () => {
    writeProject(f.repo, 'notes', { manifest: { hostname: 'not a hostname!' } });
    writeProject(f.repo, 'shop', { manifest: { env: { GREETING: 'bonjour' } } });
    const c = f.repo.commit('add notes with a bad hostname; shop: new env');
    await f.until('shop', (p) => p.appliedCommit === c && p.status === 'running');
    expect(await f.project('notes')).toBeNull();
    expect(await events(f, 'notes')).toEqual([]);
    expect(await pidOf(f, 'notes')).toBeUndefined();
    // No row to hold it: the fleet's `invalid` state and the log name the file and the field.
    expect(f.logs.some((l) => /projects\/notes\/project\.yaml.*\/hostname/.test(l))).toBe(true);
    const invalid = await f.running!.daemon.registry.getState<{ commit: string; projects: { id: string; issues: string[] }[] }>('invalid');
    expect(invalid!.commit).toBe(c);
    expect(invalid!.projects.map((p) => p.id)).toEqual(['notes']);
    expect(invalid!.projects[0].issues[0]).toMatch(/projects\/notes\/project\.yaml:\d+:\d+: \/hostname/);
    f.repo.remove('projects/notes');
    const c2 = f.repo.commit('drop notes');
    await vi.waitFor(async () => {
      const after = await f.running!.daemon.registry.getState<{ commit: string; projects: unknown[] }>('invalid');
      if (after!.commit !== c2 || after!.projects.length !== 0) throw new Error('invalid list not cleared yet');
    });
  });

  it('a later commit gives a new project blog hostname: both are invalid, blog serves on as before and records why', async () => {
    const blogPid = await pidOf(f, 'blog');
    const before = (await f.project('blog'))!;
    writeProject(f.repo, 'copycat', { manifest: { hostname: 'blog.localhost' } });
    const c = f.repo.commit('copycat takes blog.localhost');
    const blog = await f.until('blog', (p) => p.observedCommit === c && condition(p, 'Invalid')?.status === true);
    expect(condition(blog, 'Invalid')!.message).toMatch(/"blog\.localhost" is also used by projects\/copycat\/project\.yaml/);
    expect(blog).toMatchObject({ hostname: 'blog.localhost', status: 'running', upstream: before.upstream, appliedCommit: before.appliedCommit });
    expect(await pidOf(f, 'blog')).toBe(blogPid);
    expect(await httpStatus(blog.upstream!, '/ready')).toBe(200);
    expect(await f.project('copycat')).toBeNull();
    expect((await events(f, 'blog')).filter((e) => e.action === 'invalid' && e.commit === c)).toHaveLength(1);

    f.repo.remove('projects/copycat');
    const fix = f.repo.commit('drop copycat');
    const fixed = await f.until('blog', (p) => p.appliedCommit === fix);
    expect(condition(fixed, 'Invalid')).toBeUndefined();
  });

  it('logs JSON lines that carry the commit wherever they name a project, and never a secret value', async () => {
    const lines = parsed(f.logs);
    const withProject = lines.filter((l) => typeof l.project === 'string');
    expect(withProject.length).toBeGreaterThan(10);
    expect(withoutCommit(f.logs)).toEqual([]);
    const secrets: string[] = [];
    for (const id of ['blog', 'shop']) {
      const url = await f.running!.secrets.get(`/atomo/${id}/DATABASE_URL`);
      secrets.push(url, decodeURIComponent(new URL(url).password), await f.running!.secrets.get(`/atomo/${id}/JWT_SECRET`));
    }
    const text = f.logs.join('\n');
    for (const s of secrets) expect(text).not.toContain(s);
  });
});

describe('an instance that exits at once', () => {
  let f: TestFleet;

  beforeAll(async () => {
    f = await createFleet();
    writeProject(f.repo, 'steady');
    const c = f.repo.commit('add steady');
    await f.boot();
    await f.until('steady', (p) => p.status === 'running' && p.appliedCommit === c);
  });
  afterAll(async () => {
    await f?.destroy();
  });

  it('crash loop: restarts with growing gaps, then Stalled (CrashLoopBackOff) and failed; the other project runs on', async () => {
    const steadyPid = await pidOf(f, 'steady');
    writeProject(f.repo, 'crashy', { manifest: { env: { STANDIN_FAIL_AT_BOOT: '1' } } });
    f.repo.commit('add crashy, which fails at boot');
    const restarts = async () => (await events(f, 'crashy')).filter((e) => e.action === 'restart');
    await expect.poll(async () => (await restarts()).length, { timeout: 30_000 }).toBeGreaterThanOrEqual(4);
    const crashy = await f.until('crashy', (p) => p.status === 'failed' && condition(p, 'Stalled')?.status === true);
    expect(condition(crashy, 'Stalled')!.reason).toBe('CrashLoopBackOff');
    expect(crashy.lastError).toMatch(/instance exited \d+ time\(s\) in a row/);
    const list = await restarts();
    expect(list.map((e) => (e.detail as { failures: number }).failures).slice(0, 4)).toEqual([1, 2, 3, 4]);
    // Backoff 300 ms doubling, capped at 2 s: each gap is at least the wait before that restart, and they grow.
    const at = list.map((e) => Date.parse(e.at));
    const gaps = at.slice(1).map((t, i) => t - at[i]);
    gaps.slice(0, 3).forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(Math.min(300 * 2 ** (i + 1), 2000) - 50));
    expect(gaps[2]).toBeGreaterThan(gaps[0]);
    // Once stalled it stays reported stalled between attempts, not flapping back to "Running".
    await morePasses(f.running!, 5);
    const still = (await f.project('crashy'))!;
    expect(condition(still, 'Stalled')).toMatchObject({ status: true, reason: 'CrashLoopBackOff' });
    expect(still.status).toBe('failed');

    expect(await pidOf(f, 'steady')).toBe(steadyPid);
    const steady = (await f.project('steady'))!;
    expect(steady).toMatchObject({ status: 'running', lastError: null });
    expect(condition(steady, 'Healthy')?.status).toBe(true);
    expect(await httpStatus(steady.upstream!, '/ready')).toBe(200);

    f.repo.remove('projects/crashy');
    const gone = f.repo.commit('drop crashy');
    await f.until('crashy', (p) => p.status === 'stopped' && p.observedCommit === gone);
    expect(withoutCommit(f.logs)).toEqual([]);
  });
});

describe('webhook and schema-watcher exits (long poll interval: only kicks cause passes)', () => {
  const secret = 'whsec-test-7f3a';
  let f: TestFleet;
  let c1: string;
  const sign = (key: string, body: string) => `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
  const hook = (body: string, signature: string) => fetch(`${f.running!.httpUrl}/hooks/git`, {
    method: 'POST', body, headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': signature },
  });

  beforeAll(async () => {
    f = await createFleet();
    writeProject(f.repo, 'blog');
    c1 = f.repo.commit('add blog');
    // A crash would wait 10 s: an instance started again within a few seconds was not counted as one.
    await f.boot({ webhookSecret: secret, intervalMs: 60_000, backoff: { baseMs: 10_000, capMs: 60_000, stallAfter: 3, stableMs: 5000 } });
    await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === c1);
  });
  afterAll(async () => {
    await f?.destroy();
  });

  it('a push with a wrong signature gets 401 and no pass; a signed one gets 202 and converges the commit', async () => {
    writeProject(f.repo, 'blog', { manifest: { env: { GREETING: 'hi' } } });
    const c2 = f.repo.commit('blog: env');
    const body = JSON.stringify({ ref: 'refs/heads/main', after: c2 });
    const passes = f.running!.daemon.passes;
    const bad = await hook(body, sign('not-the-secret', body));
    expect(bad.status).toBe(401);
    expect((await hook(body, '')).status).toBe(401);
    // A kick starts its pass synchronously, before the response is written: none started.
    expect(f.running!.daemon.passes).toBe(passes);
    expect((await f.project('blog'))!.observedCommit).toBe(c1);
    const good = await hook(body, sign(secret, body));
    expect(good.status).toBe(202);
    expect(f.running!.daemon.passes).toBe(passes + 1);
    await f.until('blog', (p) => p.appliedCommit === c2 && p.status === 'running');
  });

  it('an exit with code 0 (schema file touched) is started again at once, without counting as a crash', async () => {
    const before = await f.until('blog', (p) => p.status === 'running');
    const pid0 = await pidOf(f, 'blog');
    const schema = join(f.stateDir, 'projects', 'blog', 'schema.ts');
    const later = new Date(Date.now() + 5000);
    utimesSync(schema, later, later);
    await expect.poll(async () => {
      const pid = await pidOf(f, 'blog');
      return pid !== undefined && pid !== pid0;
    }, { timeout: 10_000 }).toBe(true);
    const after = await f.until('blog', (p) => p.status === 'running' && p.lastHealth?.ok === true && p.upstream !== null);
    expect(after.restarts).toBe(before.restarts);
    expect(condition(after, 'Stalled')?.status).not.toBe(true);
    expect((await events(f, 'blog')).filter((e) => e.action === 'restart' && e.actor === 'fleet-daemon')).toEqual([]);
    expect(f.logs.some((l) => l.includes('instance exited with 0: starting it again'))).toBe(true);
  });
});

describe('Postgres unreachable', () => {
  let f: TestFleet | undefined;
  afterEach(async () => {
    await f?.pg.start().catch(() => {});
    await f?.destroy();
    f = undefined;
  });

  it('mid-run: the daemon stays up and tears nothing down; the commit made meanwhile converges once it is back', async () => {
    f = await createFleet();
    writeProject(f.repo, 'blog');
    writeProject(f.repo, 'shop');
    const c1 = f.repo.commit('add blog and shop');
    await f.boot();
    const blog = await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === c1);
    const shop = await f.until('shop', (p) => p.status === 'running' && p.appliedCommit === c1);
    const pids = { blog: await pidOf(f, 'blog'), shop: await pidOf(f, 'shop') };

    await f.pg.stop();
    writeProject(f.repo, 'shop', { manifest: { env: { GREETING: 'during the outage' } } });
    const c2 = f.repo.commit('shop: env during the outage');
    await expect.poll(() => f!.running!.daemon.last.error ?? '', { timeout: 15_000 }).toMatch(/unreachable/);
    await morePasses(f.running!, 3);
    expect(f.running!.daemon.last).toMatchObject({ ok: false, error: expect.stringMatching(/unreachable/) });
    for (const [id, up] of [['blog', blog.upstream!], ['shop', shop.upstream!]] as const) {
      expect(alive(pidNumber(pids[id]))).toBe(true);
      expect(await pidOf(f, id)).toBe(pids[id]);
      expect(await httpStatus(up, '/health')).toBe(200);
      expect(await httpStatus(up, '/ready')).toBe(503);
    }
    expect(parsed(f.logs).some((l) => l.msg === 'registry unreachable: keeping everything as it runs, retrying')).toBe(true);

    await f.pg.start();
    await f.until('shop', (p) => p.appliedCommit === c2 && p.status === 'running' && p.env.GREETING === 'during the outage');
    // c2 does not touch blog's folder: blog stays applied at c1, healthy again once its database answers.
    await f.until('blog', (p) => p.appliedCommit === c1 && p.lastHealth?.ok === true);
    expect(await pidOf(f, 'blog')).toBe(pids.blog);
    expect(f.running!.daemon.last.ok).toBe(true);
  });

  it('at start: the daemon boots anyway, waits and retries, and converges once Postgres is up', async () => {
    f = await createFleet();
    writeProject(f.repo, 'notes');
    const c = f.repo.commit('add notes');
    await f.pg.stop();
    const running = await f.boot();
    await expect.poll(() => running.daemon.last.error ?? '', { timeout: 15_000 }).toMatch(/unreachable/);
    await morePasses(running, 3);
    expect(await running.driver.list()).toEqual([]);
    await f.pg.start();
    await f.until('notes', (p) => p.status === 'running' && p.appliedCommit === c);
  });
});

describe('branch history and daemons', () => {
  let f: TestFleet | undefined;
  let second: RunningDaemon | undefined;
  afterEach(async () => {
    await second?.stop().catch(() => {});
    second = undefined;
    await f?.destroy();
    f = undefined;
  });

  it('force-pushed branch: a project only the dropped commit added stops; the next commit converges', async () => {
    f = await createFleet();
    writeProject(f.repo, 'blog');
    const a = f.repo.commit('A: add blog');
    await f.boot();
    await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === a);
    writeProject(f.repo, 'shop');
    const b = f.repo.commit('B: add shop');
    await f.until('shop', (p) => p.status === 'running' && p.appliedCommit === b);
    const blogPid = await pidOf(f, 'blog');

    f.repo.resetHard(a);
    const shop = await f.until('shop', (p) => p.status === 'stopped' && !p.present && p.observedCommit === a);
    expect(shop.upstream).toBeNull();
    expect(await pidOf(f, 'shop')).toBeUndefined();
    await f.until('blog', (p) => p.appliedCommit === a);
    expect(await pidOf(f, 'blog')).toBe(blogPid);

    writeProject(f.repo, 'notes');
    const c = f.repo.commit('C: add notes');
    await f.until('notes', (p) => p.status === 'running' && p.appliedCommit === c);
    expect((await f.project('shop'))!.status).toBe('stopped');
  });

  it('a second daemon on the same registry waits for the lock, says so, does nothing, and takes over when the first stops', async () => {
    f = await createFleet();
    writeProject(f.repo, 'blog');
    const c1 = f.repo.commit('add blog');
    await f.boot();
    await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === c1);
    const blogPid = await pidOf(f, 'blog');
    const logs2: string[] = [];
    const sink = new Writable({ write(chunk, _e, cb) { logs2.push(...String(chunk).split('\n').filter(Boolean)); cb(); } });
    second = await bootDaemon({
      log: createLogger({ level: 'debug', destination: sink }), repoDir: f.repo.dir, fleet: checkFleetConfig(DEFAULT_FLEET_YAML).config!,
      stateDir: f.stateDir, registryUrl: f.registryUrl, adminUrl: f.pg.url, httpPort: 0, intervalMs: 300, caddyAdmin: null,
      portBase: 29000 + Math.floor(Math.random() * 900),
    });
    const waiting = (l: string) => l.includes('another daemon holds the reconcile lock');
    await expect.poll(() => logs2.some(waiting), { timeout: 10_000 }).toBe(true);
    expect(second.daemon.last.error).toBe('waiting for the reconcile lock');

    writeProject(f.repo, 'shop');
    const c2 = f.repo.commit('add shop while two daemons run');
    await f.until('shop', (p) => p.status === 'running' && p.appliedCommit === c2);
    await morePasses(second, 3);
    expect(logs2.filter(waiting)).toHaveLength(1);
    expect(parsed(logs2).filter((l) => l.project !== undefined)).toEqual([]);

    await f.stopDaemon();
    f.running = second;
    second = undefined; // f.destroy() stops it now
    await expect.poll(() => logs2.some((l) => l.includes('holding the reconcile lock')), { timeout: 10_000 }).toBe(true);
    writeProject(f.repo, 'notes');
    const c3 = f.repo.commit('add notes after the takeover');
    await f.until('notes', (p) => p.status === 'running' && p.appliedCommit === c3);
    expect(await pidOf(f, 'blog')).toBe(blogPid);
  });

  it('--watch-worktree: saving a file is enough, no commit needed', async () => {
    f = await createFleet();
    writeProject(f.repo, 'blog');
    f.repo.commit('add blog');
    await f.boot({ watchWorktree: true, intervalMs: 60_000 });
    await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === 'worktree');
    const pid0 = await pidOf(f, 'blog');
    writeProject(f.repo, 'blog', { manifest: { env: { GREETING: 'saved, not committed' } } });
    await expect.poll(async () => {
      const pid = await pidOf(f!, 'blog');
      return pid !== undefined && pid !== pid0;
    }, { timeout: 10_000 }).toBe(true);
    const blog = await f.until('blog', (p) => p.env.GREETING === 'saved, not committed' && p.status === 'running' && p.lastHealth?.ok === true);
    expect(blog.appliedCommit).toBe('worktree');
  });
});
