// The production path end to end: the daemon with the Docker driver (against podman's Docker API) and the SSM
// secret store (against the signed SSM fake), the stand-in image in containers on the host's network (the test
// Postgres listens on loopback only), then the faults the issue lists. No podman → every test fails with why.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Docker from 'dockerode';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerDriver } from '../../daemon/drivers/docker.ts';
import { LABEL_PROJECT } from '../../daemon/drivers/container-spec.ts';
import { createLogger } from '../../daemon/log.ts';
import { checkFleetConfig } from '../../daemon/manifest/fleet-config.ts';
import { createSsmSecretStore } from '../../daemon/secrets/ssm.ts';
import type { Driver } from '../../daemon/core/types.ts';
import { startFakeSsm, FAKE_CREDENTIALS, type FakeSsm } from '../fakes/ssm-server.ts';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';
import { buildTestImage } from '../harness/image.ts';
import { startPodman, type TestPodman } from '../harness/podman.ts';
import { freePort } from '../harness/ports.ts';

// Podman's storage is shared with other test files: ids carry a run suffix so containers never collide.
const run = Math.random().toString(36).slice(2, 7);
const BLOG = `blog_${run}`;
const SHOP = `shop_${run}`;
const BROKEN = `broken_${run}`;
const VAULT = `vault_${run}`;
const IDS = [BLOG, SHOP, BROKEN, VAULT];
const BLOG_V2 = 'export interface Post { id: string; title: string; }\nexport interface Comment { id: string; }\n';

let podman: TestPodman;
let docker: Docker;
let ssm: FakeSsm;
let f: TestFleet;
let image: string;
const ports: Record<string, number> = {};
// Flipped by the "Docker API unreachable" test: the daemon's driver then talks to a socket nobody serves.
let outage = false;

function fleetYaml(endpoint: string): string {
  return [
    'branch: main', 'pollInterval: 30', 'driver: docker', 'docker:', '  network: host',
    'postgres:', '  admin: embedded',
    'secretStore:', '  type: ssm', '  region: us-east-1', `  endpoint: ${endpoint}`,
    'gateway:', '  admin: http://127.0.0.1:2019', '  listen: ":8080"', '  tls: off', '',
  ].join('\n');
}

/** Write a project's manifest; its schema file keeps its current content (a manifest edit is not a schema change). */
function project(id: string, extra: Record<string, unknown> = {}) {
  const { runtime, ...rest } = extra as { runtime?: Record<string, unknown> };
  const schemaFile = join(f.repo.dir, 'projects', id, 'schema.ts');
  const schema = existsSync(schemaFile) ? readFileSync(schemaFile, 'utf8') : undefined;
  writeProject(f.repo, id, { schema, manifest: { runtime: { image, port: ports[id], ...runtime }, resources: { memory: '256m' }, ...rest } });
}

async function containers(id: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${LABEL_PROJECT}=${id}`] } });
}

async function runningContainer(id: string): Promise<string | undefined> {
  return (await containers(id)).find((c) => c.State === 'running')?.Id;
}

async function envOf(id: string): Promise<string[]> {
  const c = await runningContainer(id);
  return c ? ((await docker.getContainer(c).inspect()).Config.Env ?? []) : [];
}

const reason = (p: { conditions: { type: string; status: boolean; reason: string }[] }, type: string) =>
  p.conditions.find((c) => c.type === type);

beforeAll(async () => {
  podman = await startPodman(); // throws with the reason when the engine cannot run here
  docker = new Docker({ socketPath: podman.socketPath });
  image = await buildTestImage(podman, 'standin');
  ssm = await startFakeSsm();
  f = await createFleet();
  for (const id of IDS) ports[id] = await freePort();
  const yaml = fleetYaml(ssm.endpoint);
  f.repo.write('fleet.yaml', yaml);
  const fleet = checkFleetConfig(yaml).config!;
  // The driver and the store log into the fleet's captured lines, so the secret grep covers them too.
  const sink = new Writable({ write(chunk, _enc, cb) { f.logs.push(...String(chunk).split('\n').filter(Boolean)); cb(); } });
  const log = createLogger({ level: 'debug', destination: sink });
  const opts = { socketPath: podman.socketPath, network: 'host', log, readyTimeoutMs: 8_000 };
  const real = createDockerDriver(opts);
  const dead = createDockerDriver({ ...opts, socketPath: `${podman.socketPath}.gone` });
  // The real driver, or (during the outage) a real driver on a dead socket: the real DRIVER_UNREACHABLE path.
  const driver: Driver = {
    name: 'docker',
    list: () => (outage ? dead : real).list(),
    start: (spec, o) => (outage ? dead : real).start(spec, o),
    stop: (id) => (outage ? dead : real).stop(id),
    retire: (routed) => (outage ? dead : real).retire!(routed),
    onExit: (l) => real.onExit!(l),
    close: async () => { await real.close!(); await dead.close!(); },
  };
  const secrets = createSsmSecretStore({ endpoint: ssm.endpoint, region: 'us-east-1', credentials: FAKE_CREDENTIALS, prefix: '/atomo', log, retryDelayMs: 100 });
  project(BLOG);
  project(SHOP);
  f.repo.commit('add blog and shop');
  await f.boot({ fleet, driver, secrets });
});

afterAll(async () => {
  await f?.stopDaemon().catch(() => {});
  if (docker) {
    for (const id of IDS) {
      for (const c of await containers(id).catch(() => [])) await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
    }
  }
  await f?.destroy();
  await ssm?.stop();
  await podman?.stop();
});

describe('production walk: docker driver and SSM store', () => {
  it('brings two projects up healthy in their own containers, secrets from SSM', async () => {
    const c1 = f.repo.head();
    for (const id of [BLOG, SHOP]) {
      const p = await f.until(id, (r) => r.status === 'running' && r.appliedCommit === c1, 60_000);
      expect(p.upstream).toBe(`127.0.0.1:${ports[id]}`);
      expect((await f.get(id, '/meta/schema')).body.project).toBe(id);
      expect(await containers(id)).toHaveLength(1);
      expect(ssm.params.get(`/atomo/${id}/JWT_SECRET`)?.type).toBe('SecureString');
    }
    expect(await envOf(BLOG)).toContain(`JWT_SECRET=${ssm.params.get(`/atomo/${BLOG}/JWT_SECRET`)!.value}`);
    expect(await envOf(BLOG)).toContain('HOST=127.0.0.1');
  });

  it('replaces only the container of the project whose schema changed, and follows schema_version', async () => {
    const blogBefore = await runningContainer(BLOG);
    const shopBefore = await runningContainer(SHOP);
    f.repo.write(`projects/${BLOG}/schema.ts`, BLOG_V2);
    const c2 = f.repo.commit('blog: comments');
    await f.until(BLOG, (p) => p.schemaVersion === c2 && p.appliedCommit === c2 && p.status === 'running', 60_000);
    expect((await f.get(BLOG, '/meta/schema')).body.models).toEqual(['Post', 'Comment']);
    expect(await runningContainer(BLOG)).not.toBe(blogBefore);
    expect(await containers(BLOG)).toHaveLength(1);
    // On the host's network the old container must be gone before the new one binds the same port.
    expect((await docker.getContainer((await runningContainer(BLOG))!).inspect()).RestartCount).toBe(0);
    expect(f.logs.filter((l) => l.includes(BLOG) && l.includes('"container exited"'))).toEqual([]);
    expect(await runningContainer(SHOP)).toBe(shopBefore);
    const starts = (await f.events(BLOG)).filter((e) => e.commit === c2 && ['start', 'restart'].includes(e.action));
    expect(starts).toHaveLength(1);
  });

  it('removes the container on state: stopped, and starts a fresh one when running again', async () => {
    project(SHOP, { state: 'stopped' });
    const c3 = f.repo.commit('stop shop');
    const shop = await f.until(SHOP, (p) => p.status === 'stopped' && p.appliedCommit === c3);
    expect(shop.upstream).toBeNull();
    expect(await containers(SHOP)).toEqual([]);
    project(SHOP);
    const c4 = f.repo.commit('start shop again');
    await f.until(SHOP, (p) => p.status === 'running' && p.appliedCommit === c4, 60_000);
    expect(await containers(SHOP)).toHaveLength(1);
  });

  it('stops a project whose folder is removed, and a revert brings it back with its data', async () => {
    const url = ssm.params.get(`/atomo/${BLOG}/DATABASE_URL`)!.value;
    const c = new pg.Client(url);
    await c.connect();
    await c.query("INSERT INTO posts (id, data) VALUES ('p1', '{}')");
    await c.end();
    f.repo.remove(`projects/${BLOG}`);
    const c5 = f.repo.commit('remove blog');
    await f.until(BLOG, (p) => p.status === 'stopped' && !p.present && p.observedCommit === c5);
    expect(await containers(BLOG)).toEqual([]);
    const c6 = f.repo.revert(c5);
    await f.until(BLOG, (p) => p.status === 'running' && p.present && p.appliedCommit === c6, 60_000);
    expect((await f.get(BLOG, '/meta/schema')).body.models).toEqual(['Post', 'Comment']);
    const back = new pg.Client(url);
    await back.connect();
    const { rows } = await back.query('SELECT id FROM posts');
    await back.end();
    expect(rows).toEqual([{ id: 'p1' }]);
  });
});

describe('production faults', () => {
  it('an image that does not exist: that project stalls with IMAGE_MISSING, the others run on', async () => {
    const shopBefore = await runningContainer(SHOP);
    const shopApplied = (await f.project(SHOP))!.appliedCommit;
    project(BROKEN, { runtime: { image: `localhost/fleet-missing-${run}:nope` } });
    const c = f.repo.commit('add a project whose image does not exist');
    const broken = await f.until(BROKEN, (p) => p.status === 'failed' && reason(p, 'Stalled')?.status === true, 60_000);
    expect(reason(broken, 'Reconciling')).toMatchObject({ status: false, reason: 'IMAGE_MISSING' });
    expect(broken.lastError).toMatch(new RegExp(`image localhost/fleet-missing-${run}:nope is not available`));
    expect(await containers(BROKEN)).toEqual([]);
    // The commit adds another project: shop's row stays applied where it was, its container untouched.
    await f.until(SHOP, (p) => p.status === 'running');
    expect((await f.project(SHOP))!.appliedCommit).toBe(shopApplied);
    expect(await runningContainer(SHOP)).toBe(shopBefore);
    f.repo.remove(`projects/${BROKEN}`);
    const gone = f.repo.commit('drop the broken project');
    await f.until(BROKEN, (p) => !p.present && p.observedCommit === gone);
  });

  it('a container killed from outside is started again by the daemon, with a restart event', async () => {
    const before = await runningContainer(SHOP);
    const restartsBefore = (await f.project(SHOP))!.restarts;
    await podman.cli(['kill', before!]);
    await expect.poll(async () => {
      const now = await runningContainer(SHOP);
      return now !== undefined && now !== before;
    }, { timeout: 30_000, interval: 200 }).toBe(true);
    const shop = await f.until(SHOP, (p) => p.status === 'running' && p.lastHealth?.ok === true && p.restarts > restartsBefore);
    expect(shop.restarts).toBe(restartsBefore + 1);
    const restart = (await f.running!.daemon.registry.events(SHOP)).filter((e) => e.action === 'restart').at(-1);
    expect(restart).toMatchObject({ actor: 'fleet-daemon', detail: expect.objectContaining({ exitCode: 137 }) });
  });

  // On the host's network old and new containers share the port: the old one must not answer the new one's probe.
  it('a replacement that cannot boot is reported as not ready, never taken for ready', async () => {
    project(SHOP, { env: { STANDIN_FAIL_AT_BOOT: '1' } });
    const bad = f.repo.commit('shop: a change that makes it fail at boot');
    const shop = await f.until(SHOP, (p) => p.observedCommit === bad && /did not become ready/.test(p.lastError ?? ''), 60_000);
    expect(reason(shop, 'Reconciling')).toMatchObject({ status: false, reason: 'DRIVER' });
    expect(shop.appliedCommit).not.toBe(bad);
    project(SHOP);
    const good = f.repo.commit('shop: revert the bad change');
    await f.until(SHOP, (p) => p.appliedCommit === good && p.status === 'running' && p.lastHealth?.ok === true, 60_000);
  });

  it('Docker API unreachable: instances stay as they are, the condition says why, convergence resumes after', async () => {
    const blogBefore = await runningContainer(BLOG);
    const shopBefore = await runningContainer(SHOP);
    outage = true;
    project(SHOP, { env: { GREETING: 'hello' } });
    const c = f.repo.commit('shop: env change during the outage');
    const passes = f.running!.daemon.passes;
    const shop = await f.until(SHOP, (p) => p.observedCommit === c && reason(p, 'Reconciling')?.reason === 'DriverUnreachable');
    expect(reason(shop, 'Reconciling')?.status).toBe(false);
    await f.until(BLOG, (p) => reason(p, 'Reconciling')?.reason === 'DriverUnreachable');
    await expect.poll(() => f.running!.daemon.passes, { timeout: 10_000 }).toBeGreaterThan(passes + 3);
    expect(shop.appliedCommit).not.toBe(c);
    expect(await runningContainer(BLOG)).toBe(blogBefore);
    expect(await runningContainer(SHOP)).toBe(shopBefore);
    outage = false;
    const back = await f.until(SHOP, (p) => p.appliedCommit === c && p.status === 'running', 60_000);
    expect(reason(back, 'Reconciling')).toMatchObject({ status: true, reason: 'Ok' });
    expect(await envOf(SHOP)).toContain('GREETING=hello');
    expect(await runningContainer(BLOG)).toBe(blogBefore);
  });

  it('SSM throttling: retried with backoff; past the attempts the condition says so; the start succeeds once it eases', async () => {
    const blogBefore = await runningContainer(BLOG);
    ssm.setFault('GetParameters', { kind: 'throttle', times: Infinity });
    project(BLOG, { env: { GREETING: 'throttled' } });
    const c = f.repo.commit('blog: env change while SSM throttles');
    const blog = await f.until(BLOG, (p) => p.observedCommit === c && reason(p, 'Reconciling')?.reason === 'SECRET_STORE');
    expect(blog.lastError).toMatch(/^SSM throttled GetParameters on .+ after 5 attempts/);
    expect(await runningContainer(BLOG)).toBe(blogBefore); // no start without its secrets
    const logsBefore = f.logs.length;
    ssm.setFault('GetParameters', { kind: 'throttle', times: 2 });
    await f.until(BLOG, (p) => p.appliedCommit === c && p.status === 'running', 60_000);
    expect(await envOf(BLOG)).toContain('GREETING=throttled');
    const retries = f.logs.slice(logsBefore).filter((l) => l.includes('SSM call failed; retrying') && l.includes('ThrottlingException'));
    expect(retries.length).toBeGreaterThanOrEqual(2);
    ssm.setFault('GetParameters', null);
  });

  it('SSM access denied: SECRET_STORE naming the parameter, no instance started, no plaintext fallback', async () => {
    ssm.setFault('GetParameters', { kind: 'access-denied' });
    project(VAULT);
    const c = f.repo.commit('add vault while SSM denies access');
    const vault = await f.until(VAULT, (p) => p.observedCommit === c && reason(p, 'Reconciling')?.reason === 'SECRET_STORE');
    expect(vault.lastError).toContain(`access denied to /atomo/${VAULT}/DATABASE_URL`);
    expect(vault.status).not.toBe('running');
    expect(await containers(VAULT)).toEqual([]);
    ssm.setFault('GetParameters', null);
    await f.until(VAULT, (p) => p.appliedCommit === c && p.status === 'running', 60_000);
    expect(await containers(VAULT)).toHaveLength(1);
  });

  it('a secret reference to a missing parameter: SECRET_MISSING on that project, then a put converges it', async () => {
    const shopBefore = await runningContainer(SHOP);
    const blogBefore = await runningContainer(BLOG);
    const blogRow = (await f.project(BLOG))!;
    project(SHOP, { env: { GREETING: 'hello' }, secrets: { STRIPE_KEY: 'stripe' } });
    const c = f.repo.commit('shop: needs a stripe key');
    const shop = await f.until(SHOP, (p) => p.observedCommit === c && reason(p, 'Reconciling')?.reason === 'SECRET_MISSING');
    expect(shop.lastError).toContain(`/atomo/${SHOP}/stripe`);
    expect(await runningContainer(SHOP)).toBe(shopBefore); // the last good instance keeps serving
    // The commit does not touch blog's folder: its row and its container stay as they were.
    const blog = (await f.project(BLOG))!;
    expect([blog.status, blog.appliedCommit]).toEqual(['running', blogRow.appliedCommit]);
    expect(await runningContainer(BLOG)).toBe(blogBefore);
    const key = `sk_test_${run}_not_for_logs`;
    await f.running!.secrets.put(`/atomo/${SHOP}/stripe`, key);
    await f.until(SHOP, (p) => p.appliedCommit === c && p.status === 'running', 60_000);
    expect(await envOf(SHOP)).toContain(`STRIPE_KEY=${key}`);
  });

  it('no secret value appears in logs, registry rows, events, container labels or names', async () => {
    const values = [...ssm.params.values()].map((p) => p.value);
    for (const v of [...values]) if (v.startsWith('postgres')) values.push(decodeURIComponent(new URL(v).password));
    expect(values.length).toBeGreaterThanOrEqual(IDS.length * 2);
    const admin = new pg.Client(f.registryUrl);
    await admin.connect();
    const registry = JSON.stringify((await admin.query('SELECT * FROM projects')).rows)
      + JSON.stringify((await admin.query('SELECT * FROM project_events')).rows)
      + JSON.stringify((await admin.query('SELECT * FROM fleet_state')).rows);
    await admin.end();
    let labels = '';
    for (const id of IDS) {
      for (const c of await containers(id)) {
        const info = await docker.getContainer(c.Id).inspect();
        labels += JSON.stringify({ names: c.Names, name: info.Name, labels: info.Config.Labels });
      }
    }
    expect(labels).toContain(BLOG);
    const logs = f.logs.join('\n');
    expect(logs.length).toBeGreaterThan(0);
    for (const v of values) {
      expect(logs.includes(v), 'a secret value in the daemon logs').toBe(false);
      expect(registry.includes(v), 'a secret value in the registry').toBe(false);
      expect(labels.includes(v), 'a secret value in container labels or names').toBe(false);
    }
  });
});
