// Blast radius, gateway side: one project's registry row cannot break the gateway for the others. Faults are written
// straight into a real registry (Postgres), as a bad value that got past validation would be, and the daemon's gateway
// step (syncGateway) loads the result into a real Caddy.
import http from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCaddyGateway } from '../../daemon/gateway/caddy.ts';
import { syncGateway, type GatewayStatus, type GatewaySync } from '../../daemon/reconcile/gateway.ts';
import { createLogger } from '../../daemon/log.ts';
import { checkFleetConfig } from '../../daemon/manifest/fleet-config.ts';
import { Registry } from '../../daemon/registry/registry.ts';
import type { EdgePolicy, FleetConfig, Manifest } from '../../daemon/core/types.ts';
import { startCaddy, type TestCaddy } from '../harness/caddy.ts';
import { DEFAULT_FLEET_YAML } from '../harness/git.ts';
import { startPostgres, type TestPostgres } from '../harness/postgres.ts';

const lines: string[] = [];
const log = createLogger({
  level: 'debug',
  destination: new Writable({ write(chunk, _e, cb) { lines.push(...String(chunk).split('\n').filter(Boolean)); cb(); } }),
});

let pgs: TestPostgres;
let caddy: TestCaddy;
let registry: Registry;
let fleet: FleetConfig;
let gs: GatewaySync;
const servers: http.Server[] = [];

function manifest(id: string, edge?: EdgePolicy): Manifest {
  return {
    id, displayName: id, hostname: `${id}.localhost`, aliases: [], state: 'running', schema: 'schema.ts',
    runtime: {}, env: {}, secrets: {}, resources: {}, ...(edge ? { edge } : {}),
  };
}

async function upstream(id: string): Promise<string> {
  const srv = http.createServer((_req, res) => res.end(JSON.stringify({ project: id })));
  servers.push(srv);
  await new Promise<void>((done) => srv.listen(0, '127.0.0.1', done));
  return `127.0.0.1:${(srv.address() as { port: number }).port}`;
}

/** GET through Caddy with a Host header; the project that answered, or the status. */
function who(host: string): Promise<string> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: caddy.httpPort, path: '/', headers: { host }, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 ? JSON.parse(body).project : String(res.statusCode)));
    });
    req.on('error', () => resolve('0'));
    req.end();
  });
}

const pass = async (over: GatewaySync = gs) => syncGateway(over, registry, await registry.list(), fleet, log);
const setEdge = (id: string, edge: EdgePolicy | undefined) => registry.update(id, { manifest: manifest(id, edge) });
const gatewayCondition = async (id: string) => (await registry.get(id))!.conditions.find((c) => c.type === 'Gateway');
const rejectedEvents = async (id: string) => (await registry.events(id)).filter((e) => e.action === 'gateway_rejected');
const loads = () => caddy.logs().split('\n').filter((l) => l.includes('"uri":"/load"')).length;

beforeAll(async () => {
  [pgs, caddy] = await Promise.all([startPostgres(), startCaddy()]);
  registry = new Registry(await pgs.database('gateway_isolation'), log);
  await registry.migrate();
  fleet = checkFleetConfig(DEFAULT_FLEET_YAML).config!;
  gs = {
    caddy: createCaddyGateway({ adminUrl: caddy.adminUrl, log }),
    override: { admin: caddy.adminListen, listen: `127.0.0.1:${caddy.httpPort}` },
  };
  for (const id of ['alpha', 'beta', 'bad']) {
    await registry.insert({
      id, displayName: id, hostname: `${id}.localhost`, aliases: [], manifest: manifest(id), status: 'running',
      desiredState: 'running', upstream: await upstream(id), present: true, databaseUrlRef: `/atomo/${id}/DATABASE_URL`,
      databaseName: `atomo_${id}`, roleName: `atomo_${id}`, schemaRef: { type: 'git', repo: 'x', path: 'schema.ts', ref: 'c0ffee' },
    });
  }
});

afterAll(async () => {
  await registry?.close();
  await Promise.all([caddy?.stop(), pgs?.destroy(), ...servers.map((s) => new Promise((done) => s.close(done)))]);
});

describe('gateway isolation with a real registry and a real Caddy', () => {
  it('routes every project while every row renders', async () => {
    expect(await pass()).toMatchObject({ ok: true, changed: true });
    expect(await Promise.all(['alpha', 'beta', 'bad'].map((id) => who(`${id}.localhost`)))).toEqual(['alpha', 'beta', 'bad']);
  });

  it('drops a project whose edge.maxBodyBytes (1e20) cannot be rendered; the others stay routed and the status says so', async () => {
    await setEdge('bad', { maxBodyBytes: 1e20 });
    const status = await pass();
    expect(status).toMatchObject({ ok: true, rejected: ['bad'] });
    expect(status.message).toMatch(/bad/);
    expect(await who('alpha.localhost')).toBe('alpha');
    expect(await who('beta.localhost')).toBe('beta');
    expect(await who('bad.localhost')).toBe('404');
    expect(await gatewayCondition('bad')).toMatchObject({
      status: false, reason: 'GatewayRejected', message: expect.stringMatching(/edge\.maxBodyBytes must be a whole number/),
    });
    expect(await gatewayCondition('alpha')).toBeUndefined();
    expect((await registry.getState<GatewayStatus>('gateway'))?.ok).toBe(true);
  });

  it('records one gateway_rejected event per distinct failure, not one per pass', async () => {
    await pass();
    await pass();
    const events = await rejectedEvents('bad');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ actor: 'fleet-daemon', detail: { message: expect.stringMatching(/maxBodyBytes/) } });
  });

  it("finds a project whose config Caddy rejects (bogus CIDR), without Caddy ever serving a partial config", async () => {
    await setEdge('bad', { allow: ['bogus-cidr'] });
    const statuses = new Set<string>();
    let done = false;
    const watch = (async () => {
      while (!done) for (const id of ['alpha', 'beta']) statuses.add(`${id}:${await who(`${id}.localhost`)}`);
    })();
    const status = await pass();
    done = true;
    await watch;
    expect(status).toMatchObject({ ok: true, rejected: ['bad'] });
    // '0' is a connection Caddy reset while reloading (it does so on any load); never a 404 or another project.
    expect([...statuses].filter((s) => !s.endsWith(':0')).sort()).toEqual(['alpha:alpha', 'beta:beta']);
    expect(await who('bad.localhost')).toBe('404');
    const condition = await gatewayCondition('bad');
    expect(condition).toMatchObject({ status: false, reason: 'GatewayRejected' });
    expect(condition!.message).toMatch(/Caddy rejected.*invalid IP address: 'bogus-cidr'/);
    expect(await rejectedEvents('bad')).toHaveLength(2);
  });

  it('does not ask Caddy again for a rejected project that did not change', async () => {
    const before = loads();
    expect(await pass()).toMatchObject({ ok: true, changed: false, rejected: ['bad'] });
    expect(loads()).toBe(before);
    expect(await rejectedEvents('bad')).toHaveLength(2);
  });

  it('after a daemon restart (no memory) finds the same failure again, without a second event', async () => {
    const fresh: GatewaySync = { caddy: gs.caddy, override: gs.override };
    expect(await pass(fresh)).toMatchObject({ ok: true, rejected: ['bad'] });
    expect(await rejectedEvents('bad')).toHaveLength(2);
  });

  it('routes the project again and clears its condition once its row is fixed', async () => {
    await setEdge('bad', { maxBodyBytes: 1024 });
    const status = await pass();
    expect(status).toMatchObject({ ok: true, changed: true });
    expect(status.rejected).toBeUndefined();
    expect(await who('bad.localhost')).toBe('bad');
    expect(await gatewayCondition('bad')).toBeUndefined();
    expect(await rejectedEvents('bad')).toHaveLength(2);
  });

  it('finds several rejected projects at once among many, and routes all the others', async () => {
    const more = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
    for (const id of more) {
      await registry.insert({
        id, displayName: id, hostname: `${id}.localhost`, aliases: [], manifest: manifest(id), status: 'running',
        desiredState: 'running', upstream: await upstream(id), present: true, databaseUrlRef: `/atomo/${id}/DATABASE_URL`,
        databaseName: `atomo_${id}`, roleName: `atomo_${id}`, schemaRef: { type: 'git', repo: 'x', path: 'schema.ts', ref: 'c0ffee' },
      });
    }
    await setEdge('c2', { deny: ['300.1.2.3'] });
    await setEdge('c5', { allow: ['10.0.0.0/99'] });
    const status = await pass();
    expect(status, status.message).toMatchObject({ ok: true, rejected: ['c2', 'c5'] });
    const answers = await Promise.all(['alpha', 'beta', 'bad', ...more].map((id) => who(`${id}.localhost`)));
    expect(answers).toEqual(['alpha', 'beta', 'bad', 'c1', '404', 'c3', 'c4', '404', 'c6']);
    expect((await gatewayCondition('c2'))?.message).toMatch(/300\.1\.2\.3/);
    expect((await gatewayCondition('c5'))?.message).toMatch(/10\.0\.0\.0\/99/);
    await setEdge('c2', undefined);
    await setEdge('c5', undefined);
    expect(await pass()).toMatchObject({ ok: true, changed: true });
    expect(await who('c5.localhost')).toBe('c5');
  });

  it('a config Caddy rejects even without projects is a fleet failure: not ok, Caddy keeps its config, no project blamed', async () => {
    const broken: GatewaySync = { ...gs, override: { ...gs.override, policies: { deny: ['nonsense'] } } };
    const status = await pass(broken);
    expect(status.ok).toBe(false);
    expect(status.message).toMatch(/even without any project.*nonsense/);
    expect((await registry.getState<GatewayStatus>('gateway'))?.ok).toBe(false);
    expect(await who('alpha.localhost')).toBe('alpha');
    for (const id of ['alpha', 'beta', 'bad', 'c2', 'c5']) expect(await gatewayCondition(id)).toBeUndefined();
  });

  it('a render error is a gateway failure in the status, never an ok (and the pass does not throw)', async () => {
    const broken: GatewaySync = { ...gs, override: { ...gs.override, policies: { maxBodyBytes: 1e20 } } };
    const status = await pass(broken);
    expect(status).toMatchObject({ ok: false, message: expect.stringMatching(/gateway\.policies\.maxBodyBytes/) });
    expect((await registry.getState<GatewayStatus>('gateway'))?.ok).toBe(false);
    expect(await who('alpha.localhost')).toBe('alpha');
    expect(await pass()).toMatchObject({ ok: true });
  });

  it('an unreachable Caddy is not a rejection: no project is blamed, and all are routed once it is back', async () => {
    await caddy.kill();
    const status = await pass();
    expect(status).toMatchObject({ ok: false, message: expect.stringMatching(/unreachable/) });
    for (const id of ['alpha', 'beta', 'bad']) expect(await gatewayCondition(id)).toBeUndefined();
    await caddy.restart();
    expect(await pass()).toMatchObject({ ok: true, changed: true });
    expect(await Promise.all(['alpha', 'beta', 'bad'].map((id) => who(`${id}.localhost`)))).toEqual(['alpha', 'beta', 'bad']);
  });
});
