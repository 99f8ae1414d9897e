// `npm start` (= `fleet daemon --dev`) as a user runs it, on a copy of this repository's example fleet: the real CLI
// as a child process starts embedded Postgres, a local Caddy from PATH and the projects, prints their URLs, and on
// SIGTERM stops its Caddy (instances and Postgres stay up by design; the test stops them).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { createRepo, type TestRepo } from '../harness/git.ts';
import { freePort } from '../harness/ports.ts';
import { createLogger } from '../../daemon/log.ts';
import { createProcessDriver } from '../../daemon/drivers/process.ts';

const ROOT = resolve(import.meta.dirname, '../..');

function get(port: number, host: string, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((done) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host }, setHost: false, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => done({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (err) => done({ status: 0, body: String(err) }));
    req.end();
  });
}

/** Pids of processes whose command line contains `needle` (found in /proc, not remembered). */
function pidsWith(needle: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(needle)) pids.push(Number(name));
    } catch { /* gone meanwhile */ }
  }
  return pids;
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

describe('npm start on the example fleet', () => {
  let repo: TestRepo;
  let child: ChildProcess | null = null;
  let stdout = '';
  let stderr = '';
  let listenPort: number;
  let adminPort: number;
  const fleetDir = () => join(repo.dir, '.fleet');
  const caddyMarker = () => join(fleetDir(), 'caddy', 'bootstrap.json');

  beforeAll(async () => {
    repo = await createRepo();
    cpSync(join(ROOT, 'projects'), join(repo.dir, 'projects'), { recursive: true });
    listenPort = await freePort();
    adminPort = await freePort();
    const fleet = parse(readFileSync(join(ROOT, 'fleet.yaml'), 'utf8'));
    fleet.gateway.admin = `http://127.0.0.1:${adminPort}`;
    fleet.gateway.listen = `127.0.0.1:${listenPort}`;
    repo.write('fleet.yaml', stringify(fleet));
    repo.write('.gitignore', '.fleet/\n');
    repo.commit('example fleet');
  });

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const pid of pidsWith(caddyMarker())) process.kill(pid, 'SIGTERM');
    // Instances and the embedded Postgres outlive the daemon on purpose: stop them here.
    const log = createLogger({ level: 'silent' });
    const driver = createProcessDriver({ stateDir: join(fleetDir(), 'instances'), log });
    for (const inst of await driver.list().catch(() => [])) await driver.stop(inst.id).catch(() => {});
    const pidFile = join(fleetDir(), 'pg', 'postmaster.pid');
    if (existsSync(pidFile)) {
      const pgPid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      if (pgPid && alive(pgPid)) {
        process.kill(pgPid, 'SIGINT');
        await vi.waitFor(() => expect(alive(pgPid)).toBe(false), { timeout: 10_000, interval: 50 });
      }
    }
    repo?.cleanup();
  });

  it('brings blog and shop up, prints their URLs, serves them through its Caddy, and stops its Caddy on SIGTERM', async () => {
    const t0 = Date.now();
    child = spawn(process.execPath, [join(ROOT, 'scripts/fleet.js'), 'daemon', '--dev', '--repo', repo.dir, '--http-port', '0'], {
      cwd: repo.dir,
      env: { ...process.env, FLEET_PG_PORT: String(await freePort()), FLEET_PORT_BASE: String(await freePort()), LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const urls = () => {
      const block = stdout.split('running projects:\n').at(-1)!;
      return {
        blog: block.match(/^ {2}blog +(http:\/\/\S+)/m)?.[1],
        shop: block.match(/^ {2}shop +(http:\/\/\S+)/m)?.[1],
      };
    };
    await vi.waitFor(() => {
      if (child!.exitCode !== null) throw new Error(`fleet daemon exited with ${child!.exitCode}:\n${stderr}\n${stdout}`);
      expect(urls().blog && urls().shop, `no URLs printed yet:\n${stdout.slice(-3000)}`).toBeTruthy();
    }, { timeout: 60_000, interval: 100 });
    console.log(`npm start → both URLs printed: ${Date.now() - t0} ms`);
    expect(urls()).toEqual({ blog: `http://blog.localhost:${listenPort}/`, shop: `http://shop.localhost:${listenPort}/` });
    // shop references STRIPE_API_KEY, which nobody set: a laptop run says so and stores a placeholder.
    expect(stdout).toMatch(/--dev: \/atomo\/shop\/STRIPE_API_KEY was not set/);
    // Log lines are for people (pino-pretty), not JSON; secrets stay out of them all the same.
    expect(stdout).toMatch(/^\[[\d:. -]+\] INFO: fleet daemon started/m);
    expect(stdout).not.toMatch(/^\{"level"/m);
    // The embedded Postgres: its URL without the password, and where the password is (0600).
    const pwFile = join(fleetDir(), 'pg-superuser-password');
    expect(stdout).toMatch(new RegExp(`^ {2}postgres +postgres://postgres@127\\.0\\.0\\.1:\\d+/postgres +\\(superuser password in ${pwFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, mode 0600\\)$`, 'm'));
    expect(stdout).not.toContain(readFileSync(pwFile, 'utf8').trim());
    expect(stdout).toMatch(/^ {2}dashboard +http:\/\/127\.0\.0\.1:\d+\/ /m);

    const blog = await get(listenPort, 'blog.localhost', '/hello');
    expect(blog.status).toBe(200);
    expect(JSON.parse(blog.body)).toMatchObject({ project: 'blog', path: '/hello' });
    expect(JSON.parse((await get(listenPort, 'www.blog.localhost')).body).project).toBe('blog');
    expect(JSON.parse((await get(listenPort, 'shop.localhost')).body).project).toBe('shop');
    expect((await get(listenPort, 'nobody.localhost')).status).toBe(404);

    const caddyPids = pidsWith(caddyMarker());
    expect(caddyPids).toHaveLength(1);
    // The URL table is printed once, not again for every project that comes up or every pass.
    expect(stdout.split('running projects:\n')).toHaveLength(2);
    const exited = new Promise<number | null>((done) => child!.once('exit', (code) => done(code)));
    const tStop = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    console.log(`SIGTERM → daemon exited: ${Date.now() - tStop} ms`);
    expect(caddyPids.filter(alive)).toEqual([]);
    expect((await get(listenPort, 'blog.localhost')).status).toBe(0);
    await expect(fetch(`http://127.0.0.1:${adminPort}/config/`)).rejects.toThrow();
    expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
  }, 90_000);
});
