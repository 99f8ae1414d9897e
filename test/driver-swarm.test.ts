// The swarm driver on a real single-node swarm: a private dockerd (Debian's docker.io) made a swarm manager by the
// harness, the real dockerode client, tasks on a swarm-scoped bridge network publishing in host mode. Placement
// in project.yaml and `driver: swarm` in fleet.yaml through the real validators.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFleetError } from '../daemon/core/errors.ts';
import type { Driver, InstanceSpec } from '../daemon/core/types.ts';
import { driverLayout } from '../daemon/drivers/index.ts';
import { createSwarmDriver, type SwarmDriverOptions } from '../daemon/drivers/swarm.ts';
import { checkFleetConfig } from '../daemon/manifest/fleet-config.ts';
import { checkProject } from '../daemon/manifest/project.ts';
import { formatIssue } from '../daemon/manifest/parse.ts';
import { startDockerd, type TestDockerd } from './harness/dockerd.ts';
import { buildTestImage } from './harness/image.ts';

const SECRET = 'jwt-secret-value-5e1b7d';
const SCHEMA_V1 = 'export interface Widget { id: string; name: string; }\n';
const SCHEMA_V2 = 'export interface Widget { id: string; name: string; }\nexport interface Gadget { id: string; }\n';
const log = pino({ level: 'silent' });

describe('placement in project.yaml', () => {
  const check = async (placement: string) => {
    const yaml = `id: acme\nhostname: acme.localhost\nplacement:\n${placement}`;
    const c = await checkProject('acme', { readFile: async (rel: string) => (rel === 'project.yaml' ? yaml : rel === 'schema.ts' ? SCHEMA_V1 : null) });
    return c.issues.map(formatIssue);
  };

  it('accepts Swarm constraints and spread preferences as compose writes them', async () => {
    expect(await check('  constraints: [node.labels.tier==hot, node.role != manager, node.hostname==n2]\n  preferences:\n    - spread: node.labels.zone\n')).toEqual([]);
  });

  it.each([
    ['  constraints: [tier==hot]\n', '/placement/constraints/0: must be a Swarm constraint <attribute>==<value>'],
    ['  constraints: ["node.labels.tier=hot"]\n', '/placement/constraints/0: must be a Swarm constraint'],
    ['  constraints: ["node.labels.tier=="]\n', '/placement/constraints/0: must be a Swarm constraint'],
    ['  constraints: [node.role==boss]\n', '/placement/constraints/0: node.role can only be manager or worker'],
    ['  preferences: [{ spread: zone }]\n', '/placement/preferences/0/spread: must be a node or engine label to spread over'],
    ['  nodes: [n2]\n', '/placement/nodes: unknown key "nodes"'],
  ])('refuses %j with a message naming the path', async (placement, message) => {
    const issues = await check(placement);
    expect(issues.join('\n')).toContain(`projects/acme/project.yaml:4:`);
    expect(issues.join('\n')).toContain(message);
  });
});

describe('driver: swarm in fleet.yaml', () => {
  it('is a known driver with its own settings and defaults', () => {
    const { config, issues } = checkFleetConfig('driver: swarm\nswarm:\n  socketPath: /run/manager.sock\n');
    expect(issues).toEqual([]);
    expect(config!.swarm).toEqual({ socketPath: '/run/manager.sock', network: 'fleet-swarm' });
    expect(checkFleetConfig('driver: swarm\n').config!.swarm).toEqual({ network: 'fleet-swarm' });
    expect(checkFleetConfig('driver: swarm\nswarm:\n  network: "no spaces"\n').issues.map(formatIssue).join('\n'))
      .toContain('/swarm/network: must be a Docker network name');
    // Tasks listen on their container's interfaces, read the schema where the config is mounted, and get their
    // ports from the swarm, not from the fleet.
    expect(driverLayout('swarm')).toEqual({ name: 'swarm', host: '0.0.0.0', hostPorts: false, schemaMount: '/app/schema.ts' });
  });
});

describe('swarm driver on a single-node swarm', () => {
  const run = Math.random().toString(36).slice(2, 7);
  let engine: TestDockerd;
  let docker: Docker;
  let image: string;
  let dir: string;
  const drivers: Driver[] = [];

  function driver(over: Partial<SwarmDriverOptions> = {}): Driver {
    // Short health and monitor periods: the test waits for them on every deploy.
    const d = createSwarmDriver({
      socketPath: engine.socketPath, log, health: { intervalMs: 500, timeoutMs: 2000, retries: 3, startPeriodMs: 10_000 }, monitorMs: 1500, ...over,
    });
    drivers.push(d);
    return d;
  }

  function spec(id: string, over: Partial<InstanceSpec> = {}): InstanceSpec {
    return {
      id, commit: 'c0ffee1234567890c0ffee1234567890c0ffee12', image, env: { MARK: 'one', JWT_SECRET: SECRET },
      schemaPath: join(dir, 'schema.ts'), port: 3000, resources: { memory: '64m', cpus: 0.25 },
      specHash: `1${id}`.padEnd(16, '0'), logDir: dir, ...over,
    };
  }

  async function get(upstream: string, path: string): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://${upstream}${path}`, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: await res.text() };
  }
  const ok = async (upstream: string) => (await get(upstream, '/ready').catch(() => ({ status: 0 }))).status === 200;
  const mark = async (upstream: string) => JSON.parse((await get(upstream, '/')).body).mark;
  const service = async (id: string) => (await docker.listServices({ filters: { label: [`atomo.fleet.project=${id}`] } }))[0];
  const configsOf = async (id: string) => docker.listConfigs({ filters: { label: [`atomo.fleet.project=${id}`] } });

  /** Polls `upstream` until stopped; the times it answered and the first time it did not. */
  function watch(upstream: string) {
    const seen = { answered: 0, firstFailure: 0, marks: new Set<string>() };
    let on = true;
    const loop = (async () => {
      while (on) {
        try {
          seen.marks.add(await mark(upstream));
          seen.answered++;
        } catch {
          seen.firstFailure ||= Date.now();
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    return { seen, stop: async () => { on = false; await loop; } };
  }

  beforeAll(async () => {
    engine = await startDockerd({ swarm: true });
    docker = engine.docker;
    image = await buildTestImage(engine, 'tiny');
    dir = mkdtempSync(join(tmpdir(), 'fleet-swarm-test-'));
    writeFileSync(join(dir, 'schema.ts'), SCHEMA_V1);
    console.log(`private dockerd + single-node swarm up in ${engine.startSeconds.toFixed(1)} s`);
  }, 120_000);

  afterAll(async () => {
    for (const d of drivers) await d.close?.();
    await engine?.stop();
    if (engine) console.log(`private dockerd with its swarm stopped and cleaned in ${engine.stopSeconds().toFixed(1)} s`);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('creates one labelled, limited service per project, serving on its task\'s node address and published port', async () => {
    const d = driver();
    const id = `acme${run}`;
    const inst = await d.start(spec(id), { ready: ok });
    expect(inst.upstream).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await mark(inst.upstream)).toBe('one');
    // The schema reached the node that runs the task, at the contract's path.
    expect((await get(inst.upstream, '/schema')).body).toBe(SCHEMA_V1);

    const s = await service(id);
    const t = s.Spec!.TaskTemplate as { ContainerSpec: Docker.ContainerSpec & { Configs?: { File: { Name: string } }[] }; Resources: unknown; RestartPolicy: unknown };
    expect(s.Spec!.Name).toBe(`fleet-${id}`);
    expect(s.Spec!.Labels).toMatchObject({ 'atomo.fleet.managed': 'true', 'atomo.fleet.project': id, 'atomo.fleet.commit': spec(id).commit, 'atomo.fleet.spec-hash': spec(id).specHash });
    expect(t.Resources).toEqual({ Limits: { MemoryBytes: 64 * 1024 ** 2, NanoCPUs: 250_000_000 }, Reservations: { MemoryBytes: 64 * 1024 ** 2, NanoCPUs: 250_000_000 } });
    expect(t.RestartPolicy).toMatchObject({ Condition: 'any' });
    expect(s.Spec!.UpdateConfig).toMatchObject({ Order: 'start-first', FailureAction: 'rollback' });
    expect(s.Spec!.EndpointSpec!.Ports).toEqual([expect.objectContaining({ TargetPort: 3000, PublishMode: 'host' })]);
    expect(t.ContainerSpec.Configs).toEqual([expect.objectContaining({ File: expect.objectContaining({ Name: '/app/schema.ts' }) })]);
    // The secret reaches the task through its environment only: never a label, a name or a config.
    expect(t.ContainerSpec.Env).toContain(`JWT_SECRET=${SECRET}`);
    const notEnv = JSON.stringify({ labels: s.Spec!.Labels, containerLabels: t.ContainerSpec.Labels, name: s.Spec!.Name, configs: await configsOf(id) });
    expect(notEnv).not.toContain(SECRET);

    const listed = (await driver().list()).find((i) => i.id === id);
    expect(listed).toEqual({ id, running: true, upstream: inst.upstream, specHash: spec(id).specHash, commit: spec(id).commit, exitCode: null, ref: inst.ref });
    // The same spec again: nothing changes.
    expect((await d.start(spec(id), { ready: ok })).ref).toBe(inst.ref);
    expect((await service(id)).Version!.Index).toBe(s.Version!.Index);
  });

  it('updates start-first: the old task answers until the new one is ready, then the new one serves', async () => {
    const d = driver();
    const id = `roll${run}`;
    const old = await d.start(spec(id), { ready: ok });
    const w = watch(old.upstream);
    const changed = spec(id, { env: { MARK: 'two', JWT_SECRET: SECRET }, specHash: `2${id}`.padEnd(16, '0') });
    const inst = await d.start(changed, { ready: ok });
    await w.stop();
    expect(inst.ref).not.toBe(old.ref);
    expect(await mark(inst.upstream)).toBe('two');
    // The old task served all along the update, and stopped only once its replacement was healthy.
    const health = (await docker.getContainer(await containerOf(inst.ref)).inspect()).State.Health!;
    const firstHealthy = Math.min(...health.Log.filter((l) => l.ExitCode === 0).map((l) => Date.parse(l.End)));
    expect(Number.isFinite(firstHealthy)).toBe(true); // the healthcheck (bash in the image) ran and passed
    expect(w.seen.answered).toBeGreaterThan(0);
    expect(w.seen.marks).toEqual(new Set(['one']));
    if (w.seen.firstFailure) expect(w.seen.firstFailure).toBeGreaterThanOrEqual(firstHealthy);
    expect((await d.list()).find((i) => i.id === id)).toMatchObject({ running: true, specHash: changed.specHash, upstream: inst.upstream });
  });

  it('rolls back a deploy whose new task fails; the old task keeps serving', async () => {
    const d = driver();
    const id = `bad${run}`;
    const old = await d.start(spec(id), { ready: ok });
    const w = watch(old.upstream);
    const broken = spec(id, { env: { MARK: 'two', FAIL_START: '1', JWT_SECRET: SECRET }, specHash: `2${id}`.padEnd(16, '0') });
    const err = await d.start(broken, { ready: ok }).catch((e) => e);
    await w.stop();
    expect(isFleetError(err, 'DRIVER')).toBe(true);
    expect(err.message).toMatch(new RegExp(`^new task of project ${id} did not become ready: .+; Swarm rolled back, the previous task keeps serving$`));
    expect(err.message).not.toContain(SECRET);
    expect(w.seen.firstFailure).toBe(0);
    expect(w.seen.marks).toEqual(new Set(['one']));
    expect((await d.list()).find((i) => i.id === id)).toMatchObject({ running: true, ref: old.ref, specHash: spec(id).specHash, upstream: old.upstream });
  });

  it('rolls back a deploy whose new task runs but never gets healthy; the old task keeps serving', async () => {
    // Tight healthcheck timings only for the new task: a task keeps the healthcheck it was created with, and the old
    // one must not fail its own checks on a loaded machine (2 cores, two swarms beside it) while the new one is sick.
    const d = driver({ health: { intervalMs: 500, timeoutMs: 1000, retries: 2, startPeriodMs: 1500 } });
    const id = `sick${run}`;
    const old = await driver().start(spec(id), { ready: ok });
    const w = watch(old.upstream);
    const sick = spec(id, { env: { MARK: 'two', NEVER_READY: '1', JWT_SECRET: SECRET }, specHash: `2${id}`.padEnd(16, '0') });
    const err = await d.start(sick, { ready: ok }).catch((e) => e);
    await w.stop();
    expect(isFleetError(err, 'DRIVER')).toBe(true);
    expect(err.message).toMatch(/did not become ready: .*\(a task that fails its healthcheck ends this way: .*\); Swarm rolled back, the previous task keeps serving$/);
    expect(w.seen.firstFailure).toBe(0);
    expect(w.seen.marks).toEqual(new Set(['one']));
    expect((await d.list()).find((i) => i.id === id)).toMatchObject({ running: true, ref: old.ref, specHash: spec(id).specHash });
  });

  it('delivers a new schema as a new config object and removes configs no service uses', async () => {
    const d = driver();
    const id = `schema${run}`;
    const schemaPath = join(dir, `${id}.ts`);
    const deploy = async (n: number, text: string) => {
      writeFileSync(schemaPath, text);
      return d.start(spec(id, { schemaPath, specHash: `${n}${id}`.padEnd(16, '0') }), { ready: ok });
    };
    await deploy(1, SCHEMA_V1);
    const v2 = await deploy(2, SCHEMA_V2);
    expect((await get(v2.upstream, '/schema')).body).toBe(SCHEMA_V2);
    // The previous one stays while the service can still roll back to it; the one before is gone.
    expect(await configsOf(id)).toHaveLength(2);
    const v3 = await deploy(3, `${SCHEMA_V2}// three\n`);
    expect((await get(v3.upstream, '/schema')).body).toContain('three');
    expect(await configsOf(id)).toHaveLength(2);
  });

  it('stops by scaling to 0 replicas, starts again by scaling to 1, and removes service and configs on delete', async () => {
    const d = driver();
    const id = `stop${run}`;
    await d.start(spec(id), { ready: ok });
    await d.stop(id);
    expect((await service(id)).Spec!.Mode).toEqual({ Replicated: { Replicas: 0 } });
    expect((await d.list()).find((i) => i.id === id)).toMatchObject({ running: false });
    await d.stop(id); // stopping what does not run is fine

    const again = await d.start(spec(id), { ready: ok });
    expect(await mark(again.upstream)).toBe('one');
    expect((await service(id)).Spec!.Mode).toEqual({ Replicated: { Replicas: 1 } });

    await d.remove!(id);
    expect(await service(id)).toBeUndefined();
    expect(await configsOf(id)).toEqual([]);
    expect((await d.list()).find((i) => i.id === id)).toBeUndefined();
    await d.remove!(id); // removing what is gone is fine
  });

  it('fails fast with a clear message when no node satisfies the placement', async () => {
    const d = driver();
    const id = `hot${run}`;
    const started = Date.now();
    const err = await d.start(spec(id, { placement: { constraints: ['node.labels.tier==hot'] } }), { ready: ok }).catch((e) => e);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(isFleetError(err, 'DRIVER')).toBe(true);
    expect(err.project).toBe(id);
    expect(err.message).toMatch(/^no swarm node satisfies the placement of project \S+ \(node\.labels\.tier==hot\): .*no suitable node.*; label a node \(docker node update --label-add tier=hot <node>\) or change placement in projects\/\S+\/project\.yaml$/);
    expect((await d.list()).find((i) => i.id === id)).toMatchObject({ running: false });
    await d.remove!(id);
  });

  it('fails with DRIVER_UNREACHABLE when the manager\'s socket is not there', async () => {
    const socketPath = join(dir, 'no-such.sock');
    const d = driver({ socketPath });
    for (const call of [() => d.list(), () => d.start(spec(`gone${run}`)), () => d.stop(`gone${run}`)]) {
      const err = await call().catch((e) => e);
      expect(isFleetError(err, 'DRIVER_UNREACHABLE')).toBe(true);
      expect(err.message).toContain(`Docker API at ${socketPath} is unreachable`);
    }
  });

  async function containerOf(taskId: string): Promise<string> {
    const task = await docker.getTask(taskId).inspect();
    return task.Status.ContainerStatus.ContainerID;
  }
});
