// The rendered config in the real Caddy, with real upstream HTTP servers standing in for instances.
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFleetError } from '../daemon/core/errors.ts';
import { adminSocketPath, createCaddyGateway, isCaddyRejection, type CaddyGateway } from '../daemon/gateway/caddy.ts';
import { permissionResponse } from '../daemon/gateway/permission.ts';
import { renderCaddyConfig } from '../daemon/gateway/render.ts';
import type { FleetConfig, Manifest, RegistryRow } from '../daemon/core/types.ts';
import { adminGet, startCaddy, type TestCaddy } from './harness/caddy.ts';
import { freePort } from './harness/ports.ts';

const log = pino({ level: 'silent' });
let caddy: TestCaddy;
let gateway: CaddyGateway;
let gw: FleetConfig['gateway'];
const servers: http.Server[] = [];
const dir = mkdtempSync(join(tmpdir(), 'fleet-gw-'));
const ups: Record<string, string> = {};
let rows: RegistryRow[];

function row(id: string, upstream: string | null, over: Partial<RegistryRow> = {}, edge?: Manifest['edge']): RegistryRow {
  const manifest: Manifest = {
    id, displayName: id, hostname: `${id}.example.com`, aliases: [], state: 'running', schema: 'schema.ts',
    runtime: {}, env: {}, secrets: {}, resources: {}, ...(edge ? { edge } : {}),
  };
  return {
    id, displayName: id, hostname: `${id}.example.com`, aliases: [], status: 'running', desiredState: 'running',
    upstream, schemaVersion: null, schemaDigest: null, observedCommit: null, appliedCommit: null,
    lastHealth: { ok: true, at: '2026-01-01T00:00:00Z' }, conditions: [], manifest, secretRefs: {}, port: null,
    updatedAt: '2026-01-01T00:00:00Z', ...over,
  };
}

/** An instance stand-in: answers its project id and the request headers it received. */
async function instance(id: string): Promise<string> {
  const srv = http.createServer((req, res) => {
    let size = 0;
    req.on('data', (d: Buffer) => (size += d.length));
    req.on('end', () => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ project: id, headers: req.headers, size }));
    });
  });
  servers.push(srv);
  await new Promise<void>((done) => srv.listen(0, '127.0.0.1', done));
  return `127.0.0.1:${(srv.address() as { port: number }).port}`;
}

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: string; json?: any }

type SendOpts = { headers?: Record<string, string>; body?: string; port?: number; path?: string };

/**
 * One request through Caddy. A connection reset is tried once more: a load just before it can have the old server
 * close a fresh connection while Caddy switches configs, which is not what any test here checks.
 */
async function send(host: string, opts: SendOpts = {}): Promise<Answer> {
  try {
    return await sendOnce(host, opts);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') throw err;
    await new Promise((r) => setTimeout(r, 50));
    return sendOnce(host, opts);
  }
}

function sendOnce(host: string, opts: SendOpts): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: opts.port ?? caddy.httpPort, path: opts.path ?? '/hello', method: opts.body ? 'POST' : 'GET', headers: { host, ...opts.headers }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          let json: any;
          try { json = JSON.parse(body); } catch { json = undefined; }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

beforeAll(async () => {
  caddy = await startCaddy();
  ups.alpha = await instance('alpha');
  ups.beta = await instance('beta');
  ups.guarded = await instance('guarded');
  ups.small = await instance('small');
  const gone = await instance('down');
  await new Promise<void>((done) => servers.pop()!.close(() => done()));
  rows = [
    row('alpha', ups.alpha, { aliases: ['www.alpha.test'] }),
    row('beta', ups.beta, { aliases: ['beta.example.org'] }),
    row('stopped', null, { status: 'stopped', desiredState: 'stopped' }),
    row('removed', ups.alpha, { manifest: null }),
    row('down', gone),
    row('guarded', ups.guarded, {}, { deny: ['127.0.0.1'] }),
    row('small', ups.small, {}, { maxBodyBytes: 64, requestIdHeader: 'X-Trace-Id' }),
  ];
  gw = { admin: caddy.adminListen, listen: `127.0.0.1:${caddy.httpPort}`, tls: 'off', policies: {} };
  gateway = createCaddyGateway({ adminUrl: caddy.adminUrl, log });
  await gateway.apply(renderCaddyConfig(rows, gw));
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await caddy?.stop();
  await Promise.all(servers.map((s) => new Promise((done) => s.close(done))));
});

describe('routing through the real Caddy', () => {
  it.each([
    ['exact hostname', 'alpha.example.com', 'alpha'],
    ['alias', 'www.alpha.test', 'alpha'],
    ['second project', 'beta.example.com', 'beta'],
    ['second project alias', 'beta.example.org', 'beta'],
    ['host with a port', 'alpha.example.com:8080', 'alpha'],
    ['upper case', 'ALPHA.Example.COM', 'alpha'],
    ['upper-case alias', 'WWW.Alpha.TEST', 'alpha'],
    ['trailing dot', 'alpha.example.com.', 'alpha'],
    ['all of them', 'Beta.Example.Org.:443', 'beta'],
  ])('%s (%s) reaches %s', async (_name, host, project) => {
    const res = await send(host);
    expect(res.status).toBe(200);
    expect(res.json.project).toBe(project);
    expect(res.json.headers['x-atomo-project']).toBe(project);
  });

  it('routes any case of a host among many projects (more than Caddy matches case-insensitively in one host list)', async () => {
    const id = (i: number) => `p${String(i).padStart(3, '0')}`;
    const many = Array.from({ length: 120 }, (_, i) => row(id(i), ups.alpha, { aliases: [`www.${id(i)}.test`] }));
    try {
      await gateway.apply(renderCaddyConfig([...rows, ...many], gw));
      for (const [host, project] of [['P115.EXAMPLE.COM', 'p115'], ['p007.Example.com.', 'p007'], ['WWW.P060.TEST', 'p060'], ['Alpha.Example.Com', 'alpha'], ['p119.example.com', 'p119']]) {
        expect((await send(host)).json.headers['x-atomo-project'], host).toBe(project);
      }
      expect((await send('P120.EXAMPLE.COM')).status).toBe(404);
    } finally {
      await gateway.apply(renderCaddyConfig(rows, gw));
    }
  });

  it('routes any case of a host among thousands, and hosts that share a prefix to their own project', async () => {
    // 2,600 projects, 5,200 hosts: more runs than one-character labels name, so fold.ts uses two-character ones.
    const id = (i: number) => `q${String(i).padStart(4, '0')}`;
    const many = Array.from({ length: 2600 }, (_, i) => row(id(i), ups.alpha, { aliases: [`www.${id(i)}.test`] }));
    const prefixed = [
      row('short', ups.alpha, { hostname: 'ab.test' }),
      row('longer', ups.alpha, { hostname: 'ab.test.example' }),
      row('wider', ups.alpha, { hostname: 'abc.test' }),
    ];
    try {
      await gateway.apply(renderCaddyConfig([...rows, ...many, ...prefixed], gw));
      const cases = [
        ['Q0000.EXAMPLE.COM', 'q0000'], ['q1300.Example.com.', 'q1300'], ['WWW.Q2599.TEST', 'q2599'], ['www.Q0064.test', 'q0064'],
        ['AB.TEST', 'short'], ['AB.TEST.', 'short'], ['Ab.Test.Example', 'longer'], ['ABC.test.', 'wider'], ['Alpha.Example.Com', 'alpha'],
      ];
      for (const [host, project] of cases) expect((await send(host)).json?.headers['x-atomo-project'], host).toBe(project);
      for (const host of ['Q2600.EXAMPLE.COM', 'AB.TEST..', 'A.TEST', 'ABCD.TEST', 'Q0000.EXAMPLE.CO']) {
        expect((await send(host)).status, host).toBe(404);
      }
    } finally {
      await gateway.apply(renderCaddyConfig(rows, gw));
    }
  }, 60_000);

  it('refuses a Host holding "#" before routing (fold.ts reads "<host>#<labels>" and relies on it)', async () => {
    for (const host of ['ALPHA.EXAMPLE.COM#0', 'alpha.example.com#']) expect((await send(host)).status, host).toBe(400);
  });

  it('routes by X-Atomo-Project only when the host is unknown', async () => {
    const byHeader = await send('127.0.0.1', { headers: { 'X-Atomo-Project': 'beta' } });
    expect(byHeader.json.project).toBe('beta');
    const hostWins = await send('alpha.example.com', { headers: { 'X-Atomo-Project': 'beta' } });
    expect(hostWins.json.project).toBe('alpha');
    // The instance is told the project it is, not what the client claimed.
    expect(hostWins.json.headers['x-atomo-project']).toBe('alpha');
  });

  it('answers one uniform 404 for never-existed, removed and unknown-header requests', async () => {
    const answers = await Promise.all([
      send('never.example.com'),
      send('removed.example.com'),
      send('NEVER.example.com.'),
      send('127.0.0.1', { headers: { 'X-Atomo-Project': 'nope' } }),
      send('127.0.0.1', { headers: { 'X-Atomo-Project': 'removed' } }),
      send('127.0.0.1', { headers: { 'X-Atomo-Project': '{env.HOME}' } }),
    ]);
    const shape = (a: Answer) => ({ status: a.status, body: a.body, headers: { ...a.headers, date: undefined } });
    expect(shape(answers[0]).status).toBe(404);
    for (const a of answers) expect(shape(a)).toEqual(shape(answers[0]));
  });

  it('answers 503 maintenance with Retry-After for a stopped project', async () => {
    const res = await send('stopped.example.com');
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('30');
    expect(res.body).toMatch(/temporarily unavailable/);
  });

  it('answers the same 503 maintenance, not 502, when a running project upstream is down', async () => {
    const down = await send('down.example.com');
    const stopped = await send('stopped.example.com');
    expect(down.status).toBe(503);
    expect(down.headers['retry-after']).toBe('30');
    expect(down.body).toBe(stopped.body);
  });
});

describe('edge policies through the real Caddy', () => {
  it('adds a request id when absent and passes it upstream and back', async () => {
    const res = await send('alpha.example.com');
    const id = res.json.headers['x-request-id'];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['x-request-id']).toBe(id);
    const again = await send('alpha.example.com');
    expect(again.json.headers['x-request-id']).not.toBe(id);
  });

  it('keeps a client request id, under the per-project header name', async () => {
    const kept = await send('alpha.example.com', { headers: { 'X-Request-Id': 'client-123' } });
    expect(kept.json.headers['x-request-id']).toBe('client-123');
    expect(kept.headers['x-request-id']).toBe('client-123');
    const custom = await send('small.example.com');
    expect(custom.json.headers['x-trace-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses a body over the project limit with 413, declared or streamed, and passes one under it', async () => {
    expect((await send('small.example.com', { body: 'x'.repeat(65) })).status).toBe(413);
    expect((await send('small.example.com', { body: 'x'.repeat(100_000) })).status).toBe(413);
    const chunked = await send('small.example.com', { body: 'x'.repeat(65), headers: { 'Transfer-Encoding': 'chunked' } });
    expect(chunked.status).toBe(413);
    const ok = await send('small.example.com', { body: 'x'.repeat(64) });
    expect(ok.status).toBe(200);
    expect(ok.json.size).toBe(64);
  });

  it('answers 403 to a denied address, for that project only', async () => {
    expect((await send('guarded.example.com')).status).toBe(403);
    expect((await send('alpha.example.com')).status).toBe(200);
  });
});

describe("instances' own /metrics and /meta are not public (edge policy, on by default)", () => {
  // Caddy's path matcher compares without case, and that is wanted: an instance's router may well answer
  // /METRICS as /metrics (Express routes without case by default), so every spelling must be refused.
  it.each(['/metrics', '/metrics/', '/metrics/x', '/metrics?format=json', '/meta', '/meta/x', '/METRICS', '/Meta/X', '//metrics', '/%6Detrics'])(
    '%s answers the uniform 404, as an unknown host does',
    async (path) => {
      const res = await send('alpha.example.com', { path });
      const unknown = await send('nobody.example.com');
      expect(res.status).toBe(404);
      expect(res.body).toBe(unknown.body);
      expect(res.json).toBeUndefined();
    },
  );

  it.each(['/metricsx', '/metametrics', '/x/metrics', '/meta-data'])('%s still reaches the instance', async (path) => {
    const res = await send('alpha.example.com', { path });
    expect(res.status).toBe(200);
    expect(res.json.project).toBe('alpha');
  });

  it('gateway.policies.exposeMetricsAndMeta: true passes them through', async () => {
    try {
      await gateway.apply(renderCaddyConfig(rows, { ...gw, policies: { exposeMetricsAndMeta: true } }));
      for (const path of ['/metrics', '/meta/x']) {
        const res = await send('alpha.example.com', { path });
        expect(res.status).toBe(200);
        expect(res.json.project).toBe('alpha');
      }
    } finally {
      await gateway.apply(renderCaddyConfig(rows, gw));
    }
  });
});

describe('admin API client', () => {
  it('does not POST a config Caddy already runs', async () => {
    // Caddy logs every admin request it receives: count the loads it saw.
    const loads = () => caddy.logs().split('\n').filter((l) => l.includes('"uri":"/load"')).length;
    const cfg = renderCaddyConfig(rows, gw);
    // Caddy writes its log lines as it goes: the count of earlier tests' loads first settles (unchanged for 200 ms).
    let before = loads();
    for (let still = 0; still < 4; ) {
      await new Promise((r) => setTimeout(r, 50));
      const now = loads();
      still = now === before ? still + 1 : 0;
      before = now;
    }
    expect(await gateway.apply(cfg)).toEqual({ changed: false });
    expect(await gateway.apply(cfg)).toEqual({ changed: false });
    expect(loads()).toBe(before);
    expect(before).toBeGreaterThan(0);
  });

  it('confirms an unchanged config by its tag, without reading the whole config back', async () => {
    const reads = () => caddy.logs().split('\n').filter((l) => l.includes('"uri":"/config/"')).length;
    const cfg = renderCaddyConfig(rows, gw);
    await gateway.apply(cfg);
    const before = reads();
    expect(await gateway.stillApplied()).toBe(true);
    expect(await gateway.apply(cfg)).toEqual({ changed: false });
    expect(reads()).toBe(before);
  });

  it('notices a config loaded beside it, and undoes an edit under its tag when asked to verify', async () => {
    const cfg = renderCaddyConfig(rows, gw);
    await gateway.apply(cfg);
    // A config loaded by hand has no tag: the client compares and loads its own again.
    const byHand = await fetch(`${caddy.adminUrl}/load`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(renderCaddyConfig(rows.slice(0, 1), gw)) });
    expect(byHand.status).toBe(200);
    expect(await gateway.stillApplied()).toBe(false);
    expect(await gateway.apply(cfg)).toEqual({ changed: true });
    // An edit that keeps the tag is seen by a verifying apply (the daemon's full pass), which loads the config again.
    const edit = await fetch(`${caddy.adminUrl}/config/apps/http/servers/atomo/errors`, { method: 'DELETE' });
    expect(edit.status).toBe(200);
    expect(await gateway.apply(cfg)).toEqual({ changed: false });
    expect(await gateway.apply(cfg, { verify: true })).toEqual({ changed: true });
    expect(await gateway.current()).toMatchObject({ apps: { http: { servers: { atomo: { errors: expect.anything() } } } } });
  });

  it('after a check, applying the same config again removes the check servers', async () => {
    const cfg = renderCaddyConfig(rows, gw);
    await gateway.apply(cfg);
    expect(await gateway.check(renderCaddyConfig([...rows, row('gamma', ups.beta)], gw))).toEqual({ ok: true });
    expect(Object.keys((await gateway.current() as any).apps.http.servers).length).toBeGreaterThan(1);
    expect(await gateway.apply(cfg)).toEqual({ changed: true });
    expect(Object.keys((await gateway.current() as any).apps.http.servers)).toEqual(['atomo']);
  });

  it('loads a changed config, and only once', async () => {
    const more = [...rows, row('gamma', ups.beta)];
    expect(await gateway.apply(renderCaddyConfig(more, gw))).toEqual({ changed: true });
    expect(await gateway.apply(renderCaddyConfig(more, gw))).toEqual({ changed: false });
    await expect.poll(async () => (await send('gamma.example.com')).json?.headers['x-atomo-project'], { timeout: 5000, interval: 50 }).toBe('gamma');
    await gateway.apply(renderCaddyConfig(rows, gw));
    // Caddy swaps servers gracefully: a connection it accepted just before the old server stopped may still get the
    // old answer on a loaded machine; the new one is in force within moments.
    await expect.poll(async () => (await send('gamma.example.com')).status, { timeout: 5000, interval: 50 }).toBe(404);
  });

  it('reloads a Caddy that was killed and restarted empty', async () => {
    await caddy.kill();
    await caddy.restart();
    expect(await gateway.current()).toEqual({ admin: { listen: caddy.adminListen, config: { persist: false } } });
    expect(await gateway.apply(renderCaddyConfig(rows, gw))).toEqual({ changed: true });
    expect((await send('alpha.example.com')).json.project).toBe('alpha');
  });

  it('throws GATEWAY with Caddy message on a rejected config, and the old config keeps serving', async () => {
    const bad = renderCaddyConfig(rows, gw) as any;
    bad.apps.http.servers.atomo.routes[0].handle[0].mappings.push({ input: 'alpha.example.com', outputs: ['beta'] });
    const err = await gateway.apply(bad).catch((e: unknown) => e);
    expect(isFleetError(err, 'GATEWAY')).toBe(true);
    expect((err as Error).message).toMatch(/Caddy rejected the gateway config \(400\):.*duplicate input/);
    expect((await send('alpha.example.com')).json.project).toBe('alpha');
  });

  it('throws GATEWAY with a clear message when the admin API is unreachable', async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const err = await createCaddyGateway({ adminUrl: nowhere, log }).apply({}).catch((e: unknown) => e);
    expect(isFleetError(err, 'GATEWAY')).toBe(true);
    expect((err as Error).message).toBe(
      `Caddy admin API at ${nowhere} is unreachable (ECONNREFUSED): start Caddy or fix gateway.admin in fleet.yaml`,
    );
  });

  it('tells a rejected config (Caddy answered 4xx) from an unreachable Caddy', async () => {
    const bad = renderCaddyConfig([...rows, row('cidr', ups.beta, {}, { allow: ['not-a-cidr'] })], gw);
    const rejected = await gateway.apply(bad).catch((e: unknown) => e);
    expect(isFleetError(rejected, 'GATEWAY')).toBe(true);
    expect(isCaddyRejection(rejected)).toBe(true);
    expect((rejected as Error).message).toMatch(/not-a-cidr/);
    const nowhere = createCaddyGateway({ adminUrl: `http://127.0.0.1:${await freePort()}`, log });
    expect(isCaddyRejection(await nowhere.apply({}).catch((e: unknown) => e))).toBe(false);
    expect(isCaddyRejection(new Error('x'))).toBe(false);
  });

  it('accepts an https admin URL (TLS client), reporting an unreachable one like http', async () => {
    const nowhere = `https://127.0.0.1:${await freePort()}`;
    const err = await createCaddyGateway({ adminUrl: nowhere, log }).current().catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      `Caddy admin API at ${nowhere} is unreachable (ECONNREFUSED): start Caddy or fix gateway.admin in fleet.yaml`,
    );
  });
});

describe('check: does Caddy accept a config, without changing what it serves', () => {
  /**
   * Every HTTP answer while `during` runs: a check must never let Caddy serve a partial config, even briefly.
   * A connection reset is not an answer: Caddy 2.6 resets the odd connection on any reload, a check's included.
   */
  async function watch<T>(host: string, during: () => Promise<T>): Promise<{ result: T; statuses: Set<number> }> {
    const statuses = new Set<number>();
    let done = false;
    const loop = (async () => {
      while (!done) await send(host).then((a) => statuses.add(a.status), () => {});
    })();
    const result = await during();
    done = true;
    await loop;
    return { result, statuses };
  }

  it('accepts a good config and keeps serving the running one (a new project is not routed yet)', async () => {
    await gateway.apply(renderCaddyConfig(rows, gw));
    const running = await gateway.current();
    const { result, statuses } = await watch('alpha.example.com', () => gateway.check(renderCaddyConfig([row('gamma', ups.beta)], gw)));
    expect(result).toEqual({ ok: true });
    expect([...statuses]).toEqual([200]);
    expect((await send('gamma.example.com')).status).toBe(404);
    expect((await send('alpha.example.com')).json.project).toBe('alpha');
    // The running config is untouched but for the check's own server, which the next apply removes.
    const after = (await gateway.current()) as any;
    expect(after.apps.http.servers.atomo).toEqual((running as any).apps.http.servers.atomo);
    expect(await gateway.apply(renderCaddyConfig(rows, gw))).toEqual({ changed: true });
    expect(Object.keys(((await gateway.current()) as any).apps.http.servers)).toEqual(['atomo']);
  });

  it('checks a config with several servers (ACME: the port-80 redirect server too)', async () => {
    const acme = renderCaddyConfig(rows, { ...gw, tls: 'acme', acmeEmail: 'ops@example.com' });
    expect(Object.keys((acme as any).apps.http.servers)).toHaveLength(2);
    expect(await gateway.check(acme)).toEqual({ ok: true });
    expect((await send('alpha.example.com')).json.project).toBe('alpha');
  });

  it("rejects a bad config with Caddy's message, and the running config keeps serving", async () => {
    const bad = renderCaddyConfig([row('cidr', ups.beta, {}, { allow: ['not-a-cidr'] })], gw);
    const { result, statuses } = await watch('alpha.example.com', () => gateway.check(bad));
    expect(result).toEqual({ ok: false, message: expect.stringMatching(/invalid IP address: 'not-a-cidr'/) });
    expect([...statuses]).toEqual([200]);
  });
});

describe('admin API on a unix socket (gateway.admin: unix:///…/admin.sock)', () => {
  let sock: TestCaddy;
  let client: CaddyGateway;
  let sockGw: FleetConfig['gateway'];
  beforeAll(async () => {
    sock = await startCaddy({ adminSocket: true });
    client = createCaddyGateway({ adminUrl: sock.adminUrl, log });
    sockGw = { ...gw, admin: sock.adminUrl, listen: `127.0.0.1:${sock.httpPort}` };
  });
  afterAll(() => sock?.stop());

  it('loads, routes, skips an unchanged config and stays on the socket after the load', async () => {
    expect(sock.adminUrl).toMatch(/^unix:\/\/\/.*admin\.sock$/);
    expect(await client.apply(renderCaddyConfig(rows, sockGw))).toEqual({ changed: true });
    expect((await send('alpha.example.com', { port: sock.httpPort })).json.project).toBe('alpha');
    expect(await client.apply(renderCaddyConfig(rows, sockGw))).toEqual({ changed: false });
    expect(((await client.current()) as any).admin.listen).toBe(sock.adminListen);
    expect((await adminGet(sock.adminUrl, '/config/')).admin.listen).toMatch(/^unix\/\//);
  });

  it('checks and rejects over the socket too', async () => {
    expect(await client.check(renderCaddyConfig(rows, sockGw))).toEqual({ ok: true });
    const bad = renderCaddyConfig([row('cidr', ups.beta, {}, { deny: ['bogus'] })], sockGw);
    expect(isCaddyRejection(await client.apply(bad).catch((e: unknown) => e))).toBe(true);
    expect((await send('alpha.example.com', { port: sock.httpPort })).json.project).toBe('alpha');
  });

  it.each([
    ['unix:///run/caddy-admin/admin.sock', '/run/caddy-admin/admin.sock'],
    ['unix:///run/caddy-admin/admin.sock|0222', '/run/caddy-admin/admin.sock'],
    ['unix//run/caddy-admin/admin.sock', '/run/caddy-admin/admin.sock'],
    ['http://caddy:2019', null],
    ['127.0.0.1:2019', null],
  ])('adminSocketPath(%j) → %j (permission bits are for Caddy, not part of the path)', (url, want) => {
    expect(adminSocketPath(url)).toBe(want);
  });

  it('reports a missing socket as unreachable, naming the socket', async () => {
    const url = `unix://${join(dir, 'nobody.sock')}`;
    const err = await createCaddyGateway({ adminUrl: url, log }).current().catch((e: unknown) => e);
    expect((err as Error).message).toBe(`Caddy admin API at ${url} is unreachable (ENOENT): start Caddy or fix gateway.admin in fleet.yaml`);
  });
});

describe('TLS through the real Caddy', () => {
  let allowServer: http.Server | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'fleet-gw-tls-'));
  afterAll(async () => {
    if (allowServer) await new Promise((done) => allowServer!.close(done));
    rmSync(dir, { recursive: true, force: true });
  });

  async function rootCa(): Promise<string> {
    return (await adminGet<{ root_certificate: string }>(caddy.adminUrl, '/pki/ca/local')).root_certificate;
  }

  function get(port: number, servername: string, ca: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port, servername, ca, path: '/', headers: { host: servername }, agent: false },
        (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: JSON.parse(body || 'null') }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  it('internal TLS serves a certificate, trusted by the local CA, for each registered name', async () => {
    const port = await freePort();
    await gateway.apply(renderCaddyConfig(rows, { ...gw, tls: 'internal', listen: `127.0.0.1:${port}` }));
    const ca = await rootCa();
    await expect.poll(() => get(port, 'www.alpha.test', ca).then((a) => a.json?.project, () => null), { timeout: 15_000 }).toBe('alpha');
  });

  it('on-demand TLS asks the permission endpoint and issues only for registered names', async () => {
    // A name no earlier test had a certificate made for, so Caddy has to ask.
    const withNew = [...rows, row('fresh', ups.beta)];
    const asked: string[] = [];
    allowServer = http.createServer((req, res) => {
      asked.push(new URL(req.url ?? '/', 'http://x').searchParams.get('domain') ?? '');
      const answer = permissionResponse(withNew, req.url ?? '/');
      res.writeHead(answer.status).end(answer.body);
    });
    await new Promise<void>((done) => allowServer!.listen(0, '127.0.0.1', done));
    const permissionUrl = `http://127.0.0.1:${(allowServer.address() as { port: number }).port}/gateway/allow`;
    const port = await freePort();
    const cfg = renderCaddyConfig(withNew, { ...gw, tls: 'internal', onDemandTls: true, listen: `127.0.0.1:${port}` }, { permissionUrl });
    await gateway.apply(cfg);
    const ca = await rootCa();
    expect((await get(port, 'fresh.example.com', ca)).json.headers['x-atomo-project']).toBe('fresh');
    await expect(get(port, 'stranger.example.com', ca)).rejects.toThrow();
    expect(asked).toEqual(['fresh.example.com', 'stranger.example.com']);
  });

  it('the ACME configs (which cannot reach a CA here) pass caddy validate', () => {
    for (const over of [{ tls: 'acme', acmeEmail: 'ops@example.com' }, { tls: 'acme', onDemandTls: true }] as const) {
      const file = join(dir, 'acme.json');
      writeFileSync(file, JSON.stringify(renderCaddyConfig(rows, { ...gw, ...over }, { permissionUrl: 'http://127.0.0.1:1/allow' })));
      const out = spawnSync('caddy', ['validate', '--config', file], { encoding: 'utf8', env: { ...process.env, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir } });
      expect(out.stderr + out.stdout).toMatch(/Valid configuration/);
      expect(out.status).toBe(0);
    }
  });
});
