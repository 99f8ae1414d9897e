// The Docker driver against two real engines with the real dockerode client: podman's Docker-compatible API
// (a user network, ports published on 127.0.0.1) and a private dockerd from Debian's docker.io (no iptables, no
// bridge: the host's network, one port per instance on loopback). Tests never send traffic to container addresses.
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
import { startDockerd } from './harness/dockerd.ts';
import { buildTestImage, type ImageEngine } from './harness/image.ts';
import { startPodman } from './harness/podman.ts';
import { freePort } from './harness/ports.ts';
import { startPostgres, type TestPostgres } from './harness/postgres.ts';

const SECRET = 'jwt-secret-value-7f3a9c';
const run = Math.random().toString(36).slice(2, 8);
const log = pino({ level: 'silent' });

interface Engine extends ImageEngine {
  socketPath: string;
  stop(): Promise<void>;
}

/** How each engine runs instances: podman on a user network with published ports, dockerd on the host's network. */
const ENGINES = [
  { name: 'podman', network: `fleet-test-${run}`, publishHost: '127.0.0.1' as string | undefined, start: (): Promise<Engine> => startPodman() },
  { name: 'dockerd', network: 'host', publishHost: undefined as string | undefined, start: (): Promise<Engine> => startDockerd() },
];

async function get(upstream: string, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${upstream}${path}`, { signal: AbortSignal.timeout(2000) });
  return { status: res.status, body: await res.text() };
}

const httpReady = async (upstream: string) => (await get(upstream, '/ready').catch(() => ({ status: 0 }))).status === 200;

describe.each(ENGINES)('docker driver on $name', ({ network, publishHost, start: startEngine }) => {
  let engine: Engine;
  let docker: Docker;
  let image: string;
  let dir: string;
  const drivers: Driver[] = [];
  const hostNet = network === 'host';
  // Tests of one networking mode are declared only for the engine that has it (no skipped test for the other).
  const none = (() => {}) as unknown as typeof it;
  const onHostNet = hostNet ? it : none;
  const onUserNet = hostNet ? none : it;

  function driver(over: Partial<Parameters<typeof createDockerDriver>[0]> = {}): Driver {
    const d = createDockerDriver({ socketPath: engine.socketPath, network, publishHost, log, ...over });
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

  beforeAll(async () => {
    engine = await startEngine();
    docker = new Docker({ socketPath: engine.socketPath });
    image = await buildTestImage(engine, 'tiny');
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
      if (!hostNet) await docker.getNetwork(network).remove().catch(() => {});
    }
    await engine?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('lifecycle', () => {
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
      if (hostNet) {
        // The host's network: the instance listens on loopback, on the port its upstream names.
        expect(info.HostConfig.NetworkMode).toBe('host');
        expect(info.Config.Env).toEqual(expect.arrayContaining(['HOST=127.0.0.1', `PORT=${inst.upstream.split(':')[1]}`]));
      } else {
        expect(info.NetworkSettings.Ports['3000/tcp']).toEqual([expect.objectContaining({ HostIp: '127.0.0.1' })]);
      }
      // The secret reaches the container through Env only: never its name or labels.
      expect(JSON.stringify(info.Config.Labels) + info.Name).not.toContain(SECRET);
      expect(info.Config.Env).toContain(`JWT_SECRET=${SECRET}`);

      const again = await d.start(spec(id), { ready: httpReady });
      expect(again.ref).toBe(inst.ref);
      expect((await docker.listContainers({ all: true, filters: { label: [`atomo.fleet.project=${id}`] } }))).toHaveLength(1);
    });

    // On a user network each container has an address of its own: old and new run side by side.
    onUserNet('replaces a changed spec by starting the new container first; the old one serves until retire sees it unrouted', async () => {
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

    // On the host's network old and new would share the project's port (and its schema file, which the old
    // instance would pick up): the old one goes first, and a replacement that never becomes ready is reported.
    onHostNet('replaces a changed spec on the host\'s network by removing the old container first, on the same port', async () => {
      const d = driver({ readyTimeoutMs: 1500 });
      const id = `hroll${run}`;
      const wanted = await freePort();
      const old = await d.start(spec(id, { port: wanted }), { ready: httpReady });
      const changed = spec(id, { port: wanted, env: { MARK: 'two', JWT_SECRET: SECRET }, specHash: `2${id}`.padEnd(16, '0') });
      const inst = await d.start(changed, { ready: httpReady });
      expect(inst.upstream).toBe(old.upstream);
      expect(JSON.parse((await get(inst.upstream, '/')).body)).toEqual({ mark: 'two' });
      await expect(docker.getContainer(old.ref).inspect()).rejects.toMatchObject({ statusCode: 404 });
      const err = await d.start(spec(id, { port: wanted, specHash: `3${id}`.padEnd(16, '0') }), { ready: async () => false }).catch((e) => e);
      expect(isFleetError(err, 'DRIVER')).toBe(true);
      expect(err.message).toMatch(/did not become ready/);
      await d.stop(id);
    });

    onUserNet('keeps the old container when the new one never becomes ready', async () => {
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
      await docker.getContainer(inst.ref).kill();
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

    onHostNet('gives each instance its own loopback port on the host\'s network, the asked-for one when free', async () => {
      const d = driver();
      const [a, b] = [`porta${run}`, `portb${run}`];
      const wanted = await freePort();
      const ia = await d.start(spec(a, { port: wanted }), { ready: httpReady });
      const ib = await d.start(spec(b, { port: wanted }), { ready: httpReady });
      expect(ia.upstream).toBe(`127.0.0.1:${wanted}`);
      expect(ib.upstream).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(ib.upstream).not.toBe(ia.upstream);
      expect(JSON.parse((await get(ib.upstream, '/')).body)).toEqual({ mark: 'one' });
      // A restarted daemon finds both where they listen.
      expect((await driver().list()).filter((i) => [a, b].includes(i.id)).map((i) => i.upstream).sort()).toEqual([ia.upstream, ib.upstream].sort());
      await d.stop(a);
      await d.stop(b);
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
  describe('running the stand-in instance', () => {
    let postgres: TestPostgres;
    beforeAll(async () => {
      postgres = await startPostgres();
    });
    afterAll(async () => {
      await postgres?.destroy();
    });

    it('boots on the mounted schema and its own database, reachable on loopback', async () => {
      const standin = await buildTestImage(engine, 'standin');
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
});
