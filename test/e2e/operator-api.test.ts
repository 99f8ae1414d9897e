// The operator API end to end, against a real daemon (real git, Postgres, instance processes) and the real `fleet`
// CLI: the token guards every route but three, sync --wait returns the outcome of the pass for the new HEAD, a
// restart replaces exactly one instance, a suspended project is left as it is until resumed, and the token shows
// up nowhere it should not (logs, instance environments).
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir, userInfo } from 'node:os';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { DEFAULT_FLEET_YAML, createRepo, writeProject } from '../harness/git.ts';
import { spawnDaemon } from '../harness/daemon-process.ts';
import { createLocalSecretStore } from '../../daemon/secrets/local.ts';

const run = promisify(execFile);
const FLEET_JS = resolve(import.meta.dirname, '../../scripts/fleet.js');
const TOKEN_REF = '/atomo/fleet/OPERATOR_TOKEN';
const ME = userInfo().username;

let f: TestFleet;
let token: string;
let c1: string;

async function pidOf(id: string): Promise<number | undefined> {
  const inst = (await f.running!.driver.list()).find((i) => i.id === id && i.running);
  return inst ? Number(inst.ref.replace(/^pid:/, '')) : undefined;
}

function environ(pid: number): string {
  return readFileSync(`/proc/${pid}/environ`, 'utf8');
}

async function api(method: string, path: string, o: { token?: string | null; body?: string; headers?: Record<string, string> } = {}) {
  const t = o.token === undefined ? token : o.token;
  const res = await fetch(`${f.running!.httpUrl}${path}`, {
    method, body: o.body, headers: { ...(t !== null ? { authorization: `Bearer ${t}` } : {}), ...o.headers },
  });
  const text = await res.text();
  let body: any = text;
  try { body = JSON.parse(text); } catch { /* text */ }
  return { status: res.status, body, text, headers: res.headers };
}

/** The real CLI; resolves with its exit code and output whatever the code. */
async function fleet(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    // The daemon's commands find it through the state dir; plan and status read the registry.
    const where = ['plan', 'status'].includes(args[0]) ? [] : ['--state-dir', f.stateDir];
    const r = await run(process.execPath, [FLEET_JS, ...args, '--repo', f.repo.dir, ...where], { env: { ...process.env, NO_COLOR: '1' } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  f = await createFleet();
  writeProject(f.repo, 'blog');
  writeProject(f.repo, 'shop');
  writeProject(f.repo, 'docs', { manifest: { state: 'stopped' } });
  c1 = f.repo.commit('blog, shop and a stopped docs');
  await f.boot();
  await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === c1);
  await f.until('shop', (p) => p.status === 'running' && p.appliedCommit === c1);
  await f.until('docs', (p) => p.status === 'stopped');
  token = await f.running!.secrets.get(TOKEN_REF);
}, 60_000);

afterAll(async () => {
  await f?.destroy();
});

describe('the operator token', () => {
  const guarded: [string, string][] = [
    ['GET', '/status'], ['GET', '/api/v1/projects'], ['GET', '/api/v1/projects/blog'], ['GET', '/api/v1/projects/nope'],
    ['GET', '/api/v1/events'], ['GET', '/api/v1/events?project=blog'], ['POST', '/api/v1/sync'], ['POST', '/api/v1/sync?wait=1'],
    ['POST', '/api/v1/projects/blog/restart'], ['POST', '/api/v1/projects/blog/suspend'], ['POST', '/api/v1/projects/blog/resume'],
    ['GET', '/api/v1/nothing-here'], ['DELETE', '/api/v1/projects/blog'],
  ];

  it.each(guarded)('%s %s: 401 without it, 401 with a wrong one (also as a cookie), with a JSON sentence and WWW-Authenticate', async (method, path) => {
    for (const o of [{ token: null }, { token: `${token}x` }, { token: token.slice(0, -1) }, { token: null, headers: { cookie: 'fleet_operator=wrong' } }]) {
      const r = await api(method, path, o);
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(r.body.error).toMatch(/operator token is required: send Authorization: Bearer <token>/);
      expect(r.text).not.toContain(token);
    }
  });

  it('nothing a refused request asked for happened', async () => {
    const blog = (await f.project('blog'))!;
    expect(blog.restartGeneration).toBe(0);
    expect(blog.suspended).toBeNull();
    expect((await f.events('blog')).map((e) => e.action)).not.toContain('restart_requested');
  });

  it('/healthz, /gateway/allow and the webhook need none (the webhook has its HMAC)', async () => {
    expect((await api('GET', '/healthz', { token: null })).status).toBe(200);
    expect((await api('GET', '/gateway/allow?domain=blog.localhost', { token: null })).status).toBe(200);
    expect((await api('POST', '/hooks/git', { token: null, body: '{}' })).status).toBe(404);
  });

  it('the right token works, as a header or the dashboard cookie', async () => {
    expect((await api('GET', '/status')).status).toBe(200);
    expect((await api('GET', '/api/v1/projects', { token: null, headers: { cookie: `fleet_operator=${encodeURIComponent(token)}` } })).status).toBe(200);
  });

  it('is in no log line and in no instance environment', async () => {
    expect(f.logs.join('\n')).not.toContain(token);
    for (const id of ['blog', 'shop']) expect(environ((await pidOf(id))!)).not.toContain(token);
  });
});

describe('reading the fleet', () => {
  it('lists and shows projects with secret names only, never values', async () => {
    const list = await api('GET', '/api/v1/projects');
    expect(list.status).toBe(200);
    expect(list.body.projects.map((p: { id: string }) => p.id)).toEqual(['blog', 'docs', 'shop']);
    const one = await api('GET', '/api/v1/projects/blog');
    expect(one.body.project).toMatchObject({ id: 'blog', status: 'running', appliedCommit: c1, secrets: ['DATABASE_URL', 'JWT_SECRET'], suspended: null });
    for (const name of ['DATABASE_URL', 'JWT_SECRET']) {
      const value = await f.running!.secrets.get(`/atomo/blog/${name}`);
      expect(list.text + one.text).not.toContain(value);
    }
  });

  it('answers unknown projects with 404, wrong methods with 405, bad bodies with 400 and 413, in sentences', async () => {
    expect(await api('GET', '/api/v1/projects/nope')).toMatchObject({ status: 404, body: { error: expect.stringMatching(/no project "nope"/) } });
    expect(await api('POST', '/api/v1/projects/nope/restart')).toMatchObject({ status: 404 });
    expect(await api('GET', '/api/v1/events?project=nope')).toMatchObject({ status: 404 });
    const wrong = await api('GET', '/api/v1/projects/blog/restart');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect(await api('POST', '/api/v1/projects/blog/suspend', { body: '{not json' })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/not valid JSON/) } });
    expect(await api('POST', '/api/v1/projects/blog/suspend', { body: '[1]' })).toMatchObject({ status: 400 });
    expect(await api('POST', '/api/v1/projects/blog/suspend', { body: JSON.stringify({ actor: 'x'.repeat(100_000) }) })).toMatchObject({ status: 413 });
    expect((await f.project('blog'))!.suspended).toBeNull();
  });

  it('pages events newest first with a next cursor', async () => {
    const all = (await api('GET', '/api/v1/events?project=blog&limit=500')).body;
    expect(all.next).toBeNull();
    const ids = all.events.map((e: { id: number }) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(all.events.length).toBeGreaterThanOrEqual(2);
    const first = (await api('GET', '/api/v1/events?project=blog&limit=1')).body;
    expect(first.events.map((e: { id: number }) => e.id)).toEqual([ids[0]]);
    expect(first.next).toBe(ids[0]);
    const second = (await api('GET', `/api/v1/events?project=blog&limit=1&before=${first.next}`)).body;
    expect(second.events.map((e: { id: number }) => e.id)).toEqual([ids[1]]);
    expect(second.events[0].projectId).toBe('blog');
  });
});

describe('operator requests through the CLI', () => {
  it('fleet sync --wait returns after the pass of the new commit, with its outcome', async () => {
    writeProject(f.repo, 'blog', { manifest: { env: { GREETING: 'hello' } } });
    const c2 = f.repo.commit('blog env');
    const r = await fleet('sync', '--wait', '--format', 'json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ commit: c2, ok: true });
    // The pass it waited for is the one that applied the commit.
    expect((await f.project('blog'))!.appliedCommit).toBe(c2);
    const text = await fleet('sync', '--wait');
    expect(text.stdout).toMatch(new RegExp(`^synced ${c2.slice(0, 7)}: the pass converged`));
    expect((await fleet('sync')).stdout).toMatch(/sync started/);
  });

  it('fleet restart restarts exactly that project, and says who asked', async () => {
    const blog = (await pidOf('blog'))!;
    const shop = (await pidOf('shop'))!;
    const before = (await f.project('blog'))!;
    const r = await fleet('restart', 'blog');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(`restart of blog requested by ${ME}`);
    await f.until('blog', (p) => p.specHash !== before.specHash && p.lastHealth?.ok === true && p.conditions.some((c) => c.type === 'Ready' && c.status));
    await expect.poll(() => pidOf('blog'), { timeout: 20_000 }).not.toBe(blog);
    expect(await pidOf('shop')).toBe(shop);
    expect((await f.project('blog'))!.restartGeneration).toBe(1);
    const events = await f.running!.daemon.registry.events('blog');
    expect(events.filter((e) => e.action === 'restart_requested')).toMatchObject([{ actor: ME, detail: { restartGeneration: 1 } }]);
    expect(events.filter((e) => e.action === 'restart').at(-1)).toMatchObject({ actor: ME, detail: { cause: 'operator', reason: `operator restart requested by ${ME}` } });
    expect((await f.running!.daemon.registry.events('shop')).map((e) => e.action)).not.toContain('restart');
    // Level-based: once the new generation runs, nothing more is planned for it.
    const restarts = events.filter((e) => e.action === 'restart').length;
    await f.running!.daemon.syncNow();
    expect((await f.running!.daemon.registry.events('blog')).filter((e) => e.action === 'restart')).toHaveLength(restarts);
  });

  it('refuses to restart a stopped project, with a sentence and exit 1', async () => {
    const r = await fleet('restart', 'docs');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/docs is stopped \(state: stopped in projects\/docs\/project.yaml\): there is no instance to restart/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect((await api('POST', '/api/v1/projects/docs/restart')).status).toBe(409);
    const json = await fleet('restart', 'nope', '--format', 'json');
    expect(json.code).toBe(1);
    expect(json.stderr).toMatch(/no project "nope"/);
  });

  it('usage: a project is required; a daemon that is not running is named as such', async () => {
    const r = await fleet('restart');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/usage: fleet restart <project>/);
    const gone = await run(process.execPath, [FLEET_JS, 'sync', '--repo', f.repo.dir, '--state-dir', `${f.stateDir}-none`]).catch((e: { code: number; stderr: string }) => e);
    expect((gone as { code: number }).code).toBe(1);
    expect((gone as { stderr: string }).stderr).toMatch(/the daemon is not running: start it with npm start/);
  });
});

describe('suspend and resume', () => {
  it('a suspended project is left exactly as it is, even by a commit changing its env or a crash; resume converges it', async () => {
    const r = await fleet('suspend', 'shop', '--format', 'json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ project: 'shop', changed: true, suspended: { by: ME } });
    const pid = (await pidOf('shop'))!;
    const row = (await f.project('shop'))!;
    const shopEvents = (await f.events('shop')).length;
    // A commit that changes both: blog follows it, shop does not.
    writeProject(f.repo, 'shop', { manifest: { env: { GREETING: 'suspended' } } });
    writeProject(f.repo, 'blog', { manifest: { env: { GREETING: 'again' } } });
    const c3 = f.repo.commit('env of both');
    expect(JSON.parse((await fleet('sync', '--wait', '--format', 'json')).stdout)).toMatchObject({ commit: c3, ok: true });
    await f.until('blog', (p) => p.appliedCommit === c3);
    expect(await pidOf('shop')).toBe(pid);
    expect(environ(pid)).not.toContain('GREETING=suspended');
    const still = (await f.project('shop'))!;
    expect({ ...still, updatedAt: '', version: '' }).toEqual({ ...row, updatedAt: '', version: '' });
    expect(await f.events('shop')).toHaveLength(shopEvents);
    // The plan and the status say so.
    const plan = await fleet('plan', '--against-registry', '--registry', f.registryUrl);
    expect(plan.stderr).toBe('');
    expect(plan.stdout).toMatch(new RegExp(`‖ shop +suspended by ${ME} at \\S+: left as it is`));
    expect(plan.stdout).not.toMatch(/^[~∓].*shop/m);
    const status = await fleet('status', '--registry', f.registryUrl);
    expect(status.stdout).toMatch(/ SUSPENDED /);
    expect(status.stdout).toMatch(new RegExp(`\\nshop .* by ${ME} at 20\\d\\d-`));
    // Its instance crashes: no restart while suspended.
    process.kill(pid, 'SIGKILL');
    await expect.poll(() => pidOf('shop'), { timeout: 10_000 }).toBeUndefined();
    await f.running!.daemon.syncNow();
    await f.running!.daemon.syncNow();
    expect(await pidOf('shop')).toBeUndefined();
    expect(await f.events('shop')).toHaveLength(shopEvents);
    // Asking again changes nothing; resume converges it on the tracked branch.
    expect(JSON.parse((await fleet('suspend', 'shop', '--format', 'json')).stdout)).toMatchObject({ changed: false });
    const resumed = await fleet('resume', 'shop');
    expect(resumed.stdout).toMatch(`shop resumed by ${ME}`);
    const back = await f.until('shop', (p) => p.appliedCommit === c3 && p.status === 'running' && p.lastHealth?.ok === true);
    expect(back.suspended).toBeNull();
    expect(environ((await pidOf('shop'))!)).toContain('GREETING=suspended');
    const actions = (await f.running!.daemon.registry.events('shop')).map((e) => [e.action, e.actor]);
    expect(actions).toContainEqual(['suspended', ME]);
    expect(actions).toContainEqual(['resumed', ME]);
    expect(actions.findIndex(([a]) => a === 'update')).toBeGreaterThan(actions.findIndex(([a]) => a === 'resumed'));
  });
});

describe('backups through the API (daemon/backup)', () => {
  it('takes one, lists it, and restores only a backup of that project named by its file name', async () => {
    expect((await api('GET', '/api/v1/projects/blog/backups', { token: null })).status).toBe(401);
    expect((await api('POST', '/api/v1/projects/blog/backup', { token: null })).status).toBe(401);
    expect((await api('POST', '/api/v1/projects/blog/restore', { token: null, body: '{"latest":true}' })).status).toBe(401);
    const taken = await api('POST', '/api/v1/projects/blog/backup', { body: JSON.stringify({ actor: 'alice' }) });
    expect(taken.status).toBe(201);
    expect(taken.body.backup).toMatchObject({ project: 'blog', kind: 'manual' });
    expect(taken.body.backup.file).toBeUndefined();
    const list = await api('GET', '/api/v1/projects/blog/backups');
    expect(list.body.backups.map((b: { name: string }) => b.name)).toContain(taken.body.backup.name);
    expect((await f.events('blog')).filter((e) => e.action === 'backup').at(-1)).toMatchObject({ actor: 'alice' });
    for (const body of ['{}', JSON.stringify({ backup: '../shop/x.dump' }), JSON.stringify({ backup: '/etc/passwd' })]) {
      expect(await api('POST', '/api/v1/projects/blog/restore', { body })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/name the backup/) } });
    }
    expect((await api('POST', '/api/v1/projects/nope/backup')).status).toBe(404);
    expect((await api('GET', '/api/v1/projects/blog/backup')).status).toBe(405);
    const restored = await api('POST', '/api/v1/projects/blog/restore?wait=1', { body: JSON.stringify({ backup: taken.body.backup.name, actor: 'alice' }) });
    expect(restored).toMatchObject({ status: 200, body: { backup: taken.body.backup.name, outcome: { ok: true } } });
  });
});

describe('a real `fleet daemon` process', () => {
  it('prints a new token once to its terminal (never in a log line), keeps daemon.json (0600) while it runs, removes it on stop', async () => {
    const repo = await createRepo();
    repo.write('fleet.yaml', DEFAULT_FLEET_YAML);
    repo.commit('no projects');
    const stateDir = mkdtempSync(join(tmpdir(), 'fleet-token-'));
    chmodSync(stateDir, 0o755);
    const registryUrl = await f.pg.database('token_registry');
    const start = () => spawnDaemon({ repoDir: repo.dir, stateDir, registryUrl, adminUrl: f.pg.url });
    try {
      const first = start();
      await vi.waitFor(() => { if (!first.httpUrl()) throw new Error('not listening yet'); }, { timeout: 30_000 });
      const stored = await createLocalSecretStore({ dir: join(stateDir, 'secrets'), prefix: '/atomo' }).get(TOKEN_REF);
      const shown = first.lines.filter((l) => l.includes(stored));
      expect(shown).toEqual([`operator token (shown once): ${stored}`]);
      expect(first.lines.some((l) => l.includes(`kept in the local secret store as ${TOKEN_REF}`))).toBe(true);
      expect(first.lines.some((l) => l.startsWith('{') && l.includes('operator token created'))).toBe(true);
      const info = JSON.parse(readFileSync(join(stateDir, 'daemon.json'), 'utf8'));
      expect(info).toMatchObject({ url: first.httpUrl(), pid: first.child.pid });
      expect(statSync(join(stateDir, 'daemon.json')).mode & 0o777).toBe(0o600);
      first.child.kill('SIGTERM');
      await first.exited;
      expect(existsSync(join(stateDir, 'daemon.json'))).toBe(false);
      // The next start reads the same token and shows nothing.
      const second = start();
      await vi.waitFor(() => { if (!second.httpUrl()) throw new Error('not listening yet'); }, { timeout: 30_000 });
      expect(second.lines.some((l) => l.includes(stored) || l.includes('shown once'))).toBe(false);
      const ok = await fetch(`${second.httpUrl()}/api/v1/projects`, { headers: { authorization: `Bearer ${stored}` } });
      expect(ok.status).toBe(200);
      second.child.kill('SIGTERM');
      await second.exited;
    } finally {
      repo.cleanup();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
