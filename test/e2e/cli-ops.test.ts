// The day-2 CLI against a real fleet (real Postgres, git, process driver, stand-in instances): `fleet events`,
// `fleet logs [-f]`, `fleet status` (health age, whether the daemon runs), `fleet secrets set` and
// `fleet secrets rotate <id> DATABASE_URL` (the role's password changes in Postgres and the project keeps working).
import { execFile, spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';

const FLEET_JS = resolve(import.meta.dirname, '../../scripts/fleet.js');
interface Run { code: number; stdout: string; stderr: string }

let f: TestFleet;

function fleet(args: string[], o: { stdin?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((done) => {
    const child = execFile(process.execPath, [FLEET_JS, ...args, '--repo', f.repo.dir], { env: { ...process.env, FLEET_DEBUG: '', ...o.env } },
      (err, stdout, stderr) => done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
    if (o.stdin !== undefined) child.stdin!.end(o.stdin);
    else child.stdin!.end();
  });
}

const withRegistry = () => ['--registry', f.registryUrl, '--state-dir', f.stateDir];
const pidOf = async (id: string) => Number((await f.running!.driver.list()).find((i) => i.id === id && i.running)!.ref.replace('pid:', ''));
const envOf = (pid: number, name: string) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((v) => v.startsWith(`${name}=`))?.slice(name.length + 1);
const noStack = (r: Run) => expect(r.stdout + r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);

async function canLogin(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('SELECT 1');
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? 'error';
  } finally {
    await c.end().catch(() => {});
  }
}

beforeAll(async () => {
  f = await createFleet();
  writeProject(f.repo, 'blog');
  writeProject(f.repo, 'shop', { manifest: { secrets: { STRIPE_KEY: 'stripe-key' } } });
  // shop needs STRIPE_KEY before it can start: set the way the template says.
  await f.boot();
  await f.running!.secrets.put('/atomo/shop/stripe-key', 'first-stripe-value');
  const c1 = f.repo.commit('add blog and shop');
  await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === c1 && p.lastHealth?.ok === true);
  await f.until('shop', (p) => p.status === 'running' && p.appliedCommit === c1 && p.lastHealth?.ok === true);
});

afterAll(async () => {
  await f?.destroy();
});

describe('fleet events', () => {
  it('prints the registry\'s events in readable columns, newest last, for the fleet or one project', async () => {
    const all = await fleet(['events', ...withRegistry()]);
    expect(all.code).toBe(0);
    const [header, ...rows] = all.stdout.trim().split('\n');
    expect(header).toMatch(/^TIME\s+PROJECT\s+ACTION\s+ACTOR\s+COMMIT\s+DETAIL$/);
    expect(rows.some((r) => /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+blog\s+create\s+/.test(r))).toBe(true);
    expect(rows.some((r) => /\sshop\s+create\s/.test(r))).toBe(true);
    const times = rows.map((r) => r.slice(0, 19));
    expect([...times].sort()).toEqual(times);
    const blog = await fleet(['events', 'blog', ...withRegistry()]);
    expect(blog.stdout.trim().split('\n').slice(1).every((r) => /^\S+ \S+\s+blog\s/.test(r))).toBe(true);
  });

  it('--limit keeps the newest, --since filters by age or time, --format json gives the rows', async () => {
    const all = (await fleet(['events', ...withRegistry()])).stdout.trim().split('\n');
    const one = (await fleet(['events', '--limit', '1', ...withRegistry()])).stdout.trim().split('\n');
    // Columns are padded to their widest cell, so rows are compared cell by cell.
    expect(one).toHaveLength(2);
    expect(one[1].split(/\s+/)).toEqual(all.at(-1)!.split(/\s+/));
    expect((await fleet(['events', '--since', '1h', ...withRegistry()])).stdout.trim().split('\n')).toHaveLength(all.length);
    expect((await fleet(['events', '--since', '2999-01-01T00:00:00Z', ...withRegistry()])).stdout.trim()).toBe('no events');
    const json = JSON.parse((await fleet(['events', 'shop', '--format', 'json', ...withRegistry()])).stdout);
    expect(json.map((e: { projectId: string }) => e.projectId).every((id: string) => id === 'shop')).toBe(true);
    expect(json.some((e: { action: string }) => e.action === 'create')).toBe(true);
  });

  it('says what --since and --limit take, with exit code 2', async () => {
    for (const args of [['--since', 'yesterday'], ['--limit', '0'], ['--limit', 'x']]) {
      const r = await fleet(['events', ...args, ...withRegistry()]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/--since takes|--limit takes/);
      noStack(r);
    }
  });
});

describe('fleet logs', () => {
  it('prints the last lines of the instance log', async () => {
    const r = await fleet(['logs', 'blog', '--lines', '50', '--state-dir', f.stateDir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('*** STAND-IN');
    expect(r.stdout.trim().split('\n').length).toBeLessThanOrEqual(50);
    const one = await fleet(['logs', 'blog', '--lines', '1', '--state-dir', f.stateDir]);
    expect(one.stdout.trim().split('\n')).toHaveLength(1);
    const json = await fleet(['logs', 'blog', '--lines', '2', '--format', 'json', '--state-dir', f.stateDir]);
    expect(json.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { project: 'blog', line: expect.any(String) }, { project: 'blog', line: expect.any(String) },
    ]);
  });

  it('follows with -f until Ctrl-C, and exits 0', async () => {
    const child = spawn(process.execPath, [FLEET_JS, 'logs', 'blog', '-f', '--lines', '0', '--state-dir', f.stateDir, '--repo', f.repo.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // A line written where the instance writes its output (the stand-in logs nothing per request).
    const logFile = join(f.stateDir, 'projects', 'blog', 'logs', 'instance.log');
    await expect.poll(() => {
      appendFileSync(logFile, 'hello-from-the-logs-test\n');
      return out;
    }, { timeout: 20_000, interval: 300 }).toContain('hello-from-the-logs-test');
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('refuses an id that is not a project id (exit 2), and says when a project has no log', async () => {
    const bad = await fleet(['logs', '../../etc', '--state-dir', f.stateDir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('not a project id');
    const none = await fleet(['logs', 'nosuch', '--state-dir', f.stateDir]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no instance log for nosuch/);
  });
});

describe('fleet status', () => {
  it('shows how long each project has been healthy and that the daemon runs', async () => {
    const r = await fleet(['status', ...withRegistry()]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^blog\s+running\s+healthy for \d+[smhd]\s+[0-9a-f]{7}\s/m);
    expect(r.stdout).toMatch(/^daemon: running at http:\/\/127\.0\.0\.1:\d+ \(pid \d+, up \d+[smhd]\)$/m);
  });

  it('says clearly when the daemon is not running: no daemon.json, a dead pid, or nothing answering', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-status-'));
    try {
      const none = await fleet(['status', '--registry', f.registryUrl, '--state-dir', dir]);
      expect(none.code).toBe(0);
      expect(none.stdout).toMatch(/^daemon: NOT RUNNING \(no .*daemon\.json\): the table above is what it last recorded; start it with npm start/m);
      writeFileSync(join(dir, 'daemon.json'), JSON.stringify({ url: 'http://127.0.0.1:1', pid: 2 ** 22 + 17, startedAt: new Date().toISOString() }));
      const dead = await fleet(['status', '--registry', f.registryUrl, '--state-dir', dir]);
      expect(dead.stdout).toMatch(/^daemon: NOT RUNNING \(pid \d+ named by .*daemon\.json is gone\)/m);
      writeFileSync(join(dir, 'daemon.json'), JSON.stringify({ url: 'http://127.0.0.1:1', pid: process.pid, startedAt: new Date().toISOString() }));
      const deaf = await fleet(['status', '--registry', f.registryUrl, '--state-dir', dir]);
      expect(deaf.stdout).toMatch(/^daemon: NOT ANSWERING at http:\/\/127\.0\.0\.1:1 \(pid \d+\)/m);
      const json = await fleet(['status', '--registry', f.registryUrl, '--state-dir', dir, '--format', 'json']);
      expect(JSON.parse(json.stdout).map((p: { id: string }) => p.id)).toEqual(['blog', 'shop']);
      expect(json.stderr).toMatch(/daemon: NOT ANSWERING/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fleet secrets set', () => {
  it('stores a declared secret from stdin and restarts that project with it; never prints the value', async () => {
    const before = await pidOf('shop');
    const blogPid = await pidOf('blog');
    const r = await fleet(['secrets', 'set', 'shop', 'STRIPE_KEY', ...withRegistry()], { stdin: 'second-stripe-value\n' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('set STRIPE_KEY of shop (/atomo/shop/stripe-key)');
    expect(r.stdout + r.stderr).not.toContain('second-stripe-value');
    expect(await f.running!.secrets.get('/atomo/shop/stripe-key')).toBe('second-stripe-value');
    await expect.poll(async () => {
      const pid = await pidOf('shop').catch(() => before);
      return pid !== before && envOf(pid, 'STRIPE_KEY');
    }, { timeout: 30_000, interval: 200 }).toBe('second-stripe-value');
    expect(await pidOf('blog')).toBe(blogPid);
    expect((await f.events('shop')).some((e) => e.action === 'secret_set')).toBe(true);
  });

  it('refuses a name the manifest does not declare, a generated one, and an empty value', async () => {
    const undeclared = await fleet(['secrets', 'set', 'shop', 'NOPE', ...withRegistry()], { stdin: 'x' });
    expect(undeclared.code).toBe(1);
    expect(undeclared.stderr).toMatch(/projects\/shop\/project\.yaml declares no secret NOPE \(declared: STRIPE_KEY\); add it under secrets: first/);
    const generated = await fleet(['secrets', 'set', 'shop', 'JWT_SECRET', ...withRegistry()], { stdin: 'x' });
    expect(generated.stderr).toMatch(/JWT_SECRET is generated by the fleet: use fleet secrets rotate shop JWT_SECRET/);
    const empty = await fleet(['secrets', 'set', 'shop', 'STRIPE_KEY', ...withRegistry()], { stdin: '' });
    expect(empty.stderr).toMatch(/pipe the value of STRIPE_KEY on standard input/);
    for (const r of [undeclared, generated, empty]) noStack(r);
  });
});

describe('fleet secrets rotate <id> DATABASE_URL', () => {
  it('sets a new role password in Postgres, stores the new URL, restarts the project, which keeps working', async () => {
    const oldUrl = await f.running!.secrets.get('/atomo/blog/DATABASE_URL');
    const oldPid = await pidOf('blog');
    const before = (await f.project('blog'))!;
    const r = await fleet(['secrets', 'rotate', 'blog', 'DATABASE_URL', '--postgres', f.pg.url, ...withRegistry()]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('rotated DATABASE_URL of blog');
    const newUrl = await f.running!.secrets.get('/atomo/blog/DATABASE_URL');
    expect(newUrl).not.toBe(oldUrl);
    const [o, n] = [new URL(oldUrl), new URL(newUrl)];
    expect([n.username, n.host, n.pathname]).toEqual([o.username, o.host, o.pathname]);
    expect(r.stdout + r.stderr).not.toContain(decodeURIComponent(n.password));
    expect(await canLogin(newUrl)).toBe('ok');
    expect(await canLogin(oldUrl)).toBe('28P01'); // invalid_password
    await f.until('blog', (p) => p.secretsVersion === before.secretsVersion + 1 && p.specHash !== before.specHash
      && p.lastHealth?.ok === true && p.conditions.some((c) => c.type === 'Ready' && c.status));
    const pid = await pidOf('blog');
    expect(pid).not.toBe(oldPid);
    expect(envOf(pid, 'DATABASE_URL')).toBe(newUrl);
    expect((await f.get('blog', '/ready')).status).toBe(200);
    const events = await f.running!.daemon.registry.events('blog');
    expect(events.find((e) => e.action === 'secret_rotated' && e.detail?.name === 'DATABASE_URL')).toBeTruthy();
    expect(JSON.stringify(events)).not.toContain(decodeURIComponent(n.password));
  });
});
