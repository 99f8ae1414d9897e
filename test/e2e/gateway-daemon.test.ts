// The gateway end to end: git commit → daemon → registry → rendered config → real Caddy → stand-in instance.
// Every request goes through Caddy's HTTP port with the Host header a browser would send.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { adminGet, startCaddy, type TestCaddy } from '../harness/caddy.ts';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';
import { freePort } from '../harness/ports.ts';
import { MAINTENANCE_BODY, NOT_FOUND_BODY, RETRY_AFTER_SECONDS } from '../../daemon/gateway/render.ts';
import type { GatewayStatus } from '../../daemon/reconcile/gateway.ts';

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: string; json: any }

/** GET through Caddy with a chosen Host header (fetch cannot set Host). Connection errors give status 0. */
function through(port: number, host: string, path = '/', headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', headers: { ...headers, host }, setHost: false, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: any = null;
        try { json = JSON.parse(body); } catch { /* a static page */ }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
      });
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, headers: {}, body: String(err), json: null }));
    req.end();
  });
}

/** Who answered for `host`: the stand-in names its project; anything else is `<status>`. */
async function who(port: number, host: string, headers: Record<string, string> = {}): Promise<string> {
  const a = await through(port, host, '/probe', headers);
  return a.status === 200 && a.json ? `${a.json.project}${a.json.path}` : `${a.status}`;
}

function withoutDate(h: http.IncomingHttpHeaders): http.IncomingHttpHeaders {
  const { date: _date, ...rest } = h;
  return rest;
}

async function bootWithGateway(f: TestFleet, caddy: TestCaddy, extra: Record<string, unknown> = {}) {
  return f.boot({
    caddyAdmin: caddy.adminUrl,
    gatewayOverride: { listen: `127.0.0.1:${caddy.httpPort}`, admin: caddy.adminListen },
    portBase: await freePort(),
    ...extra,
  });
}

const gatewayState = (f: TestFleet) => f.running!.daemon.registry.getState<GatewayStatus>('gateway');

describe('gateway through the daemon and a real Caddy', () => {
  let caddy: TestCaddy;
  let f: TestFleet;
  let port: number;
  const pidOf = async (id: string) => {
    const inst = (await f.running!.driver.list()).find((i) => i.id === id && i.running);
    return inst ? Number(inst.ref.replace(/^pid:/, '')) : undefined;
  };

  beforeAll(async () => {
    caddy = await startCaddy();
    port = caddy.httpPort;
    f = await createFleet();
  });
  afterAll(async () => {
    await f?.destroy();
    await caddy?.stop();
  });

  it('routes a project added in a commit by hostname, alias, header and unusual Host forms', async () => {
    writeProject(f.repo, 'blog', { manifest: { aliases: ['www.blog.localhost'] } });
    writeProject(f.repo, 'shop');
    f.repo.commit('add blog and shop');
    const t0 = Date.now();
    // A crash must not be restarted soon (see the instance-down test below): the backoff is long.
    await bootWithGateway(f, caddy, { backoff: { baseMs: 60_000, capMs: 60_000, stallAfter: 3, stableMs: 5000 } });
    await expect.poll(() => who(port, 'blog.localhost'), { timeout: 30_000, interval: 100 }).toBe('blog/probe');
    console.log(`commit → reachable through Caddy (cold start, 2 projects): ${Date.now() - t0} ms`);
    const answer = await through(port, 'blog.localhost', '/any/path?x=1');
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ project: 'blog', path: '/any/path' });
    expect(answer.headers['x-request-id']).toMatch(/[0-9a-f-]{36}/);
    await expect.poll(() => who(port, 'shop.localhost'), { timeout: 30_000, interval: 100 }).toBe('shop/probe');
    expect(await who(port, 'www.blog.localhost')).toBe('blog/probe');
    expect(await who(port, 'unknown.example', { 'X-Atomo-Project': 'shop' })).toBe('shop/probe');
    // The hostname beats the header; an unknown header value is the uniform 404.
    expect(await who(port, 'blog.localhost', { 'X-Atomo-Project': 'shop' })).toBe('blog/probe');
    expect(await who(port, 'unknown.example', { 'X-Atomo-Project': 'nope' })).toBe('404');
    for (const host of ['blog.localhost:8080', 'BLOG.LOCALHOST', 'Blog.Localhost.', 'blog.localhost.', 'WWW.Blog.localhost.:443']) {
      expect(await who(port, host), host).toBe('blog/probe');
    }
  });

  it('records the Gateway condition as ok and keeps secrets out of the Caddy config', async () => {
    await expect.poll(async () => (await gatewayState(f))?.ok, { timeout: 10_000 }).toBe(true);
    const config = JSON.stringify(await adminGet(caddy.adminUrl, '/config/'));
    expect(config).toContain('blog.localhost');
    const secrets: string[] = [];
    for (const id of ['blog', 'shop']) {
      const url = await f.running!.secrets.get(`/atomo/${id}/DATABASE_URL`);
      secrets.push(url, decodeURIComponent(new URL(url).password), await f.running!.secrets.get(`/atomo/${id}/JWT_SECRET`));
    }
    for (const s of secrets) expect(config).not.toContain(s);
  });

  it('serves a project added while running within a few passes', async () => {
    writeProject(f.repo, 'notes');
    f.repo.commit('add notes');
    const t0 = Date.now();
    await expect.poll(() => who(port, 'notes.localhost'), { timeout: 30_000, interval: 50 }).toBe('notes/probe');
    console.log(`commit → reachable through Caddy (running daemon, new project): ${Date.now() - t0} ms`);
  });

  it('rejects an alias equal to another project hostname and leaves routing as it was', async () => {
    const before = await caddyConfig(caddy);
    writeProject(f.repo, 'notes', { manifest: { aliases: ['shop.localhost'] } });
    const bad = f.repo.commit('notes claims shop.localhost');
    const notes = await f.until('notes', (p) => p.observedCommit === bad && p.conditions.some((c) => c.type === 'Invalid' && c.status));
    expect(notes.conditions.find((c) => c.type === 'Invalid')?.message).toMatch(/shop\.localhost.*unique/);
    await f.until('shop', (p) => p.observedCommit === bad);
    expect(await who(port, 'shop.localhost')).toBe('shop/probe');
    expect(await who(port, 'notes.localhost')).toBe('notes/probe');
    // Never rendered: the config Caddy runs is the one from before the bad commit.
    expect(await caddyConfig(caddy)).toEqual(before);
    const fixed = f.repo.revert(bad);
    await f.until('notes', (p) => p.appliedCommit === fixed && !p.conditions.some((c) => c.type === 'Invalid' && c.status));
  });

  it('re-loads the config within one pass when Caddy restarts empty', async () => {
    await caddy.kill();
    expect(await who(port, 'blog.localhost')).toBe('0');
    await caddy.restart();
    const t0 = Date.now();
    // An empty Caddy listens on no HTTP port until the daemon loads the config again (300 ms passes).
    await expect.poll(() => who(port, 'blog.localhost'), { timeout: 5_000, interval: 50 }).toBe('blog/probe');
    console.log(`Caddy restarted empty → routing back: ${Date.now() - t0} ms`);
    expect(caddy.logs()).toMatch(/"uri":"\/load"/);
    expect((await gatewayState(f))?.ok).toBe(true);
  });

  it('answers the maintenance page (503, not 502) when a registered instance dies', async () => {
    const pid = await pidOf('shop');
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, 'SIGKILL');
    // Before the daemon notices, Caddy cannot reach the upstream: that 502 is shown as maintenance too.
    await expect.poll(async () => (await through(port, 'shop.localhost')).status, { timeout: 5_000, interval: 20 }).toBe(503);
    await f.until('shop', (p) => p.lastHealth?.ok === false, 10_000);
    // The pass that recorded the health goes on to reload Caddy: a new connection made during that reload can be
    // reset (Caddy swaps its listeners), so the answer is polled for, as above.
    let a = await through(port, 'shop.localhost');
    await expect.poll(async () => (a = await through(port, 'shop.localhost')).status, { timeout: 5_000, interval: 20 }).toBe(503);
    expect(a.body).toBe(MAINTENANCE_BODY);
    expect(a.headers['retry-after']).toBe(RETRY_AFTER_SECONDS);
    expect(await who(port, 'blog.localhost')).toBe('blog/probe');
  });

  it('answers maintenance for state: stopped and the uniform 404 once the folder is removed', async () => {
    writeProject(f.repo, 'blog', { manifest: { aliases: ['www.blog.localhost'], state: 'stopped' } });
    const stop = f.repo.commit('stop blog');
    await f.until('blog', (p) => p.status === 'stopped' && p.appliedCommit === stop);
    await expect.poll(async () => (await through(port, 'blog.localhost')).status, { timeout: 5_000, interval: 50 }).toBe(503);
    for (const host of ['blog.localhost', 'www.blog.localhost']) {
      const a = await through(port, host);
      expect(a.body).toBe(MAINTENANCE_BODY);
      expect(a.headers['retry-after']).toBe(RETRY_AFTER_SECONDS);
    }
    f.repo.remove('projects/blog');
    const rm = f.repo.commit('remove blog');
    await f.until('blog', (p) => !p.present && p.observedCommit === rm);
    await expect.poll(async () => (await through(port, 'blog.localhost')).status, { timeout: 5_000, interval: 50 }).toBe(404);
    const never = await through(port, 'never-existed.localhost');
    for (const host of ['blog.localhost', 'www.blog.localhost', 'BLOG.localhost.']) {
      const gone = await through(port, host);
      expect(gone.status).toBe(never.status);
      expect(gone.body).toBe(never.body);
      expect(withoutDate(gone.headers)).toEqual(withoutDate(never.headers));
    }
    expect(never.body).toBe(NOT_FOUND_BODY);
    expect(await who(port, 'notes.localhost')).toBe('notes/probe');
  });
});

describe('gateway when Caddy is not there at start', () => {
  let caddy: TestCaddy;
  let f: TestFleet;

  beforeAll(async () => {
    caddy = await startCaddy();
    await caddy.kill();
    f = await createFleet();
  });
  afterAll(async () => {
    await f?.destroy();
    await caddy?.stop();
  });

  it('keeps reconciling, records the gateway failure, and loads the config once Caddy is up', async () => {
    writeProject(f.repo, 'blog');
    f.repo.commit('add blog');
    await bootWithGateway(f, caddy);
    await f.until('blog', (p) => p.status === 'running');
    await expect.poll(async () => (await gatewayState(f))?.ok, { timeout: 10_000 }).toBe(false);
    const state = (await gatewayState(f))!;
    expect(state.message).toContain(`Caddy admin API at ${caddy.adminUrl} is unreachable`);
    expect(state.message).toMatch(/start Caddy or fix gateway\.admin/);
    await caddy.restart();
    const t0 = Date.now();
    await expect.poll(() => who(caddy.httpPort, 'blog.localhost'), { timeout: 5_000, interval: 50 }).toBe('blog/probe');
    console.log(`Caddy up after the daemon → routing: ${Date.now() - t0} ms`);
    await expect.poll(async () => (await gatewayState(f))?.ok, { timeout: 5_000 }).toBe(true);
  });
});

describe('gateway with the Caddy admin API on a unix socket (gateway.admin: unix:///…)', () => {
  let caddy: TestCaddy;
  let f: TestFleet;

  beforeAll(async () => {
    caddy = await startCaddy({ adminSocket: true });
    f = await createFleet();
  });
  afterAll(async () => {
    await f?.destroy();
    await caddy?.stop();
  });

  it('loads the config over the socket, keeps Caddy on it, and reloads a Caddy that restarted empty', async () => {
    writeProject(f.repo, 'blog');
    f.repo.commit('add blog');
    await f.boot({ caddyAdmin: caddy.adminUrl, gatewayOverride: { listen: `127.0.0.1:${caddy.httpPort}`, admin: caddy.adminUrl }, portBase: await freePort() });
    await expect.poll(() => who(caddy.httpPort, 'blog.localhost'), { timeout: 30_000, interval: 100 }).toBe('blog/probe');
    expect((await adminGet(caddy.adminUrl, '/config/')).admin.listen).toBe(caddy.adminListen);
    await expect.poll(async () => (await gatewayState(f))?.ok, { timeout: 10_000 }).toBe(true);
    await caddy.kill();
    await caddy.restart();
    await expect.poll(() => who(caddy.httpPort, 'blog.localhost'), { timeout: 5_000, interval: 50 }).toBe('blog/probe');
  });
});

async function caddyConfig(caddy: TestCaddy): Promise<unknown> {
  return adminGet(caddy.adminUrl, '/config/');
}
