// The Docker driver against a real Docker-compatible API (podman) with the real dockerode client.
// Instances publish on 127.0.0.1 only; tests never send traffic to container addresses.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerDriver } from '../daemon/drivers/docker.ts';
import { isFleetError } from '../daemon/core/errors.ts';
import type { Driver, InstanceSpec } from '../daemon/core/types.ts';
import { buildTestImage } from './harness/image.ts';
import { startPodman, type TestPodman } from './harness/podman.ts';
import { freePort } from './harness/ports.ts';
import { startPostgres, type TestPostgres } from './harness/postgres.ts';

const SECRET = 'jwt-secret-value-7f3a9c';
const run = Math.random().toString(36).slice(2, 8);
const network = `fleet-test-${run}`;
const log = pino({ level: 'silent' });

let podman: TestPodman;
let docker: Docker;
let image: string;
let dir: string;
const drivers: Driver[] = [];

function driver(over: Partial<Parameters<typeof createDockerDriver>[0]> = {}): Driver {
  const d = createDockerDriver({ socketPath: podman.socketPath, network, publishHost: '127.0.0.1', log, ...over });
  drivers.push(d);
  return d;
}

function spec(id: string, over: Partial<InstanceSpec> = {}): InstanceSpec {
  return {
    id,
    commit: 'c0ffee1234567890c0ffee1234567890c0ffee12',
    image,
    env: { MARK: 'one', JWT_SECRET: SECRET },
    schemaPath: join(dir, 'schema.ts'),
    port: 3000,
    resources: { memory: '64m', cpus: 0.5 },
    specHash: `1${id}`.padEnd(16, '0'),
    logDir: dir,
    ...over,
  };
}

async function get(upstream: string, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${upstream}${path}`, { signal: AbortSignal.timeout(2000) });
  return { status: res.status, body: await res.text() };
}

const httpReady = async (upstream: string) => (await get(upstream, '/ready').catch(() => ({ status: 0 }))).status === 200;

beforeAll(async () => {
  podman = await startPodman();
  docker = new Docker({ socketPath: podman.socketPath });
  image = await buildTestImage(podman, 'tiny');
  dir = mkdtempSync(join(tmpdir(), 'fleet-docker-test-'));
  writeFileSync(join(dir, 'schema.ts'), 'export interface Widget { id: string; name: string; }\n');
});

afterAll(async () => {
  for (const d of drivers) await d.close?.();
  if (docker) {
    const mine = await docker.listContainers({ all: true, filters: { label: ['atomo.fleet.managed=true'] } });
    for (const c of mine.filter((c) => c.Labels['atomo.fleet.project']?.endsWith(run))) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
    }
    await docker.getNetwork(network).remove().catch(() => {});
  }
  await podman?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('docker driver', () => {
  it('starts a labelled, limited container reachable on a loopback port, and reuses it for the same spec', async () => {
    const d = driver();
    const id = `acme${run}`;
    const inst = await d.start(spec(id), { ready: httpReady });
    expect(inst.upstream).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await get(inst.upstream, '/ready')).toEqual({ status: 200, body: 'OK' });
    expect(JSON.parse((await get(inst.upstream, '/')).body)).toEqual({ mark: 'one' });

    const listed = (await d.list()).find((i) => i.id === id);
    expect(listed).toMatchObject({ id, running: true, specHash: spec(id).specHash, commit: spec(id).commit, ref: inst.ref, upstream: inst.upstream });

    const info = await docker.getContainer(inst.ref).inspect();
    expect(info.Name.replace(/^\//, '')).toBe(`fleet-${id}-${spec(id).specHash.slice(0, 8)}`);
    expect(info.Config.Labels).toMatchObject({
      'atomo.fleet.managed': 'true', 'atomo.fleet.project': id, 'atomo.fleet.commit': spec(id).commit, 'atomo.fleet.spec-hash': spec(id).specHash,
    });
    expect(info.HostConfig.Memory).toBe(64 * 1024 * 1024);
    expect(info.HostConfig.NanoCpus).toBe(500_000_000);
    expect(info.HostConfig.RestartPolicy?.Name).toBe('unless-stopped');
    expect(info.Mounts).toEqual(expect.arrayContaining([expect.objectContaining({ Source: join(dir, 'schema.ts'), Destination: '/app/schema.ts', RW: false })]));
    expect(info.NetworkSettings.Ports['3000/tcp']).toEqual([expect.objectContaining({ HostIp: '127.0.0.1' })]);
    // The secret reaches the container through Env only: never its name or labels.
    expect(JSON.stringify(info.Config.Labels) + info.Name).not.toContain(SECRET);
    expect(info.Config.Env).toContain(`JWT_SECRET=${SECRET}`);

    const again = await d.start(spec(id), { ready: httpReady });
    expect(again.ref).toBe(inst.ref);
    expect((await docker.listContainers({ all: true, filters: { label: [`atomo.fleet.project=${id}`] } }))).toHaveLength(1);
  });

  it('replaces a changed spec by starting the new container first; the old one serves until retire sees it unrouted', async () => {
    const d = driver({ drainMs: 0 });
    const id = `roll${run}`;
    const old = await d.start(spec(id), { ready: httpReady });
    const changed = spec(id, { env: { MARK: 'two', JWT_SECRET: SECRET }, specHash: `2${id}`.padEnd(16, '0') });
    const oldStateDuringProbe: boolean[] = [];
    const inst = await d.start(changed, {
      ready: async (upstream) => {
        oldStateDuringProbe.push((await docker.getContainer(old.ref).inspect()).State.Running);
        return httpReady(upstream);
      },
    });
    expect(oldStateDuringProbe.length).toBeGreaterThan(0);
    expect(oldStateDuringProbe.every(Boolean)).toBe(true);
    expect(inst.ref).not.toBe(old.ref);
    expect(JSON.parse((await get(inst.upstream, '/')).body)).toEqual({ mark: 'two' });
    // The old one keeps serving until nothing routes to it; list() reports the new one only.
    expect(JSON.parse((await get(old.upstream, '/')).body)).toEqual({ mark: 'one' });
    expect((await d.list()).filter((i) => i.id === id)).toEqual([expect.objectContaining({ ref: inst.ref })]);
    await d.retire!(new Set([old.upstream]));
    expect((await docker.getContainer(old.ref).inspect()).State.Running).toBe(true);
    await d.retire!(new Set([inst.upstream]));
    await expect(docker.getContainer(old.ref).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(await get(inst.upstream, '/ready')).toMatchObject({ status: 200 });

    // A restarted daemon (a new driver object) finds the instance by its labels.
    const fresh = driver();
    expect((await fresh.list()).filter((i) => i.id === id)).toEqual([
      expect.objectContaining({ id, ref: inst.ref, running: true, specHash: changed.specHash, upstream: inst.upstream }),
    ]);

    await fresh.stop(id);
    expect((await fresh.list()).filter((i) => i.id === id)).toEqual([]);
    await fresh.stop(id); // stopping what does not run is fine
  });

  it('keeps the old container when the new one never becomes ready', async () => {
    const d = driver({ readyTimeoutMs: 1500 });
    const id = `stuck${run}`;
    const old = await d.start(spec(id), { ready: httpReady });
    const err = await d.start(spec(id, { specHash: `2${id}`.padEnd(16, '0') }), { ready: async () => false }).catch((e) => e);
    expect(isFleetError(err, 'DRIVER')).toBe(true);
    expect(err.message).toMatch(/did not become ready.*previous instance keeps running/);
    const left = await docker.listContainers({ all: true, filters: { label: [`atomo.fleet.project=${id}`] } });
    expect(left.map((c) => c.Id)).toEqual([old.ref]);
    expect(await get(old.upstream, '/ready')).toMatchObject({ status: 200 });
  });

  it('reports a container killed from outside through onExit, and list shows it stopped', async () => {
    const d = driver();
    const exits: [string, number | null][] = [];
    d.onExit!((id, code) => exits.push([id, code]));
    const id = `kill${run}`;
    const inst = await d.start(spec(id), { ready: httpReady });
    await podman.cli(['kill', inst.ref]);
    await expect.poll(() => exits, { timeout: 15_000 }).toContainEqual([id, 137]);
    await expect.poll(async () => (await d.list()).find((i) => i.id === id), { timeout: 15_000 })
      .toMatchObject({ running: false, exitCode: 137 });
    // Stopping it on purpose is not reported as an exit.
    const before = exits.length;
    const other = `quiet${run}`;
    await d.start(spec(other), { ready: httpReady });
    await d.stop(other);
    await d.stop(id);
    expect(exits.slice(before).filter(([p]) => p === other)).toEqual([]);
  });

  it('fails with IMAGE_MISSING and a clear message when the image cannot be found or pulled', async () => {
    const d = driver({ pullTimeoutMs: 30_000 });
    const id = `noimg${run}`;
    const err = await d.start(spec(id, { image: 'localhost/fleet-does-not-exist:nope' })).catch((e) => e);
    expect(isFleetError(err, 'IMAGE_MISSING')).toBe(true);
    expect(err.project).toBe(id);
    expect(err.message).toMatch(new RegExp(`^image localhost/fleet-does-not-exist:nope is not available: .+; build or push it, or fix runtime.image in projects/${id}/project.yaml$`));
  });

  it('fails with DRIVER_UNREACHABLE when the Docker API socket is not there', async () => {
    const socketPath = join(dir, 'no-such.sock');
    const d = driver({ socketPath });
    for (const call of [() => d.list(), () => d.start(spec(`gone${run}`)), () => d.stop(`gone${run}`)]) {
      const err = await call().catch((e) => e);
      expect(isFleetError(err, 'DRIVER_UNREACHABLE')).toBe(true);
      expect(err.message).toContain(`Docker API at ${socketPath} is unreachable`);
    }
  });
});

// The real contract end to end: the stand-in reads the read-only schema mount and its own database. It shares
// the host's network because the test Postgres listens on loopback only.
describe('docker driver running the stand-in instance', () => {
  let postgres: TestPostgres;
  beforeAll(async () => {
    postgres = await startPostgres();
  });
  afterAll(async () => {
    await postgres?.destroy();
  });

  it('boots on the mounted schema and its own database, reachable on loopback', async () => {
    const standin = await buildTestImage(podman, 'standin');
    const d = driver({ network: 'host', publishHost: undefined });
    const id = `standin${run}`;
    const port = await freePort();
    const env = { DATABASE_URL: await postgres.database(`atomo_${id}`), ATOMO_ENV: 'development' };
    const inst = await d.start(spec(id, { image: standin, port, env, resources: { memory: '256m' } }), { ready: httpReady });
    expect(inst.upstream).toBe(`127.0.0.1:${port}`);
    const digest = createHash('sha256').update(readFileSync(join(dir, 'schema.ts'))).digest('hex');
    expect(JSON.parse((await get(inst.upstream, '/meta/schema')).body)).toEqual({ models: ['Widget'], digest, project: id });
    await d.stop(id);
    expect((await d.list()).filter((i) => i.id === id)).toEqual([]);
  });
});
