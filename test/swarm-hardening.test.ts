// The swarm driver against hostile ids and the network, on a real single-node swarm (a private dockerd made a
// manager by test/harness/dockerd.ts): every name it derives from an id the validator accepts is one Swarm takes,
// and a task's published port listens only on its node's own address, not on every interface.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFleetError } from '../daemon/core/errors.ts';
import type { Driver, InstanceSpec } from '../daemon/core/types.ts';
import { createSwarmDriver, type SwarmDriverOptions } from '../daemon/drivers/swarm.ts';
import { DEFAULT_HEALTH, DEFAULT_HEALTHCHECK, renderService, schemaConfigName, schemaDigest, serviceName } from '../daemon/drivers/swarm-spec.ts';
import { BIND_OPTION } from '../daemon/drivers/swarm-network.ts';
import { startDockerd, type TestDockerd } from './harness/dockerd.ts';
import { buildTestImage } from './harness/image.ts';

/** The ids at the edges of the id rule (as in swarm-names.test.ts). */
const EDGE_IDS = ['a', 'a_', `a${'_'.repeat(39)}`, `a${'b'.repeat(39)}`, `a${'b'.repeat(38)}_`, 'blog__'];
const SCHEMA = 'export interface Widget { id: string; name: string; }\n';
const log = pino({ level: 'silent' });

/** Addresses something listens on at `port` on this host (/proc/net/tcp and tcp6, state 0A = LISTEN). */
function listeners(port: number): string[] {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state !== '0A' || !local?.endsWith(`:${hex}`)) continue;
      const addr = local.split(':')[0];
      out.push(addr.length === 8 ? addr.match(/../g)!.reverse().map((b) => parseInt(b, 16)).join('.') : `[${addr}]`);
    }
  }
  return out;
}

describe('swarm driver hardening on a single-node swarm', () => {
  let engine: TestDockerd;
  let docker: Docker;
  let image: string;
  let dir: string;
  const drivers: Driver[] = [];

  function driver(over: Partial<SwarmDriverOptions> = {}): Driver {
    const d = createSwarmDriver({ socketPath: engine.socketPath, log, health: { intervalMs: 500, timeoutMs: 2000, retries: 3, startPeriodMs: 10_000 }, monitorMs: 1500, ...over });
    drivers.push(d);
    return d;
  }
  const spec = (id: string): InstanceSpec => ({
    id, commit: 'c0ffee1234567890c0ffee1234567890c0ffee12', image, env: { MARK: id }, schemaPath: join(dir, 'schema.ts'),
    port: 3000, resources: { memory: '64m' }, specHash: `1${id}`.padEnd(16, '0').slice(0, 48), logDir: dir,
  });
  const ok = async (upstream: string) => (await fetch(`http://${upstream}/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => null))?.status === 200;

  beforeAll(async () => {
    engine = await startDockerd({ swarm: true });
    docker = engine.docker;
    image = await buildTestImage(engine, 'tiny');
    dir = mkdtempSync(join(tmpdir(), 'fleet-swarm-harden-'));
    writeFileSync(join(dir, 'schema.ts'), SCHEMA);
  }, 120_000);

  afterAll(async () => {
    for (const d of drivers) await d.close?.();
    await engine?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('the engine takes the service and config names of every edge id (40 characters, ending in _)', async () => {
    const digest = schemaDigest(SCHEMA);
    for (const id of EDGE_IDS) {
      const config = await docker.createConfig({ Name: schemaConfigName(id, digest), Data: Buffer.from(SCHEMA).toString('base64') }) as { id: string };
      const body = renderService(spec(id), {
        network: 'host', config: { id: config.id, name: schemaConfigName(id, digest) }, healthcheck: DEFAULT_HEALTHCHECK, health: DEFAULT_HEALTH, monitorMs: 1000, replicas: 0,
      });
      const made = await docker.createService({ ...body, TaskTemplate: { ...body.TaskTemplate, Networks: [] } } as unknown as Docker.CreateServiceOptions) as { id: string };
      expect((await docker.getService(made.id).inspect()).Spec.Name).toBe(serviceName(id));
      await docker.getService(made.id).remove();
      await docker.getConfig(config.id).remove();
    }
  });

  it('runs a project whose id is 40 characters ending in _, end to end', async () => {
    const id = `a${'b'.repeat(38)}_`;
    const d = driver();
    const inst = await d.start(spec(id), { ready: ok });
    expect(await ok(inst.upstream)).toBe(true);
    expect((await d.list()).find((i) => i.id === id)).toMatchObject({ running: true, upstream: inst.upstream });
    await d.remove!(id);
    expect((await d.list()).find((i) => i.id === id)).toBeUndefined();
  });

  it("publishes a task's port on its node's address only, never on every interface", async () => {
    const d = driver();
    const inst = await d.start(spec('bound'), { ready: ok });
    const [addr, port] = inst.upstream.split(':');
    expect(addr).toBe('127.0.0.1');
    expect(listeners(Number(port))).toEqual(['127.0.0.1']);
    // The manager's config-only network says so, and the tasks' network takes its settings from it.
    const bind = await docker.getNetwork('fleet-swarm-bind').inspect();
    expect(bind).toMatchObject({ ConfigOnly: true, Options: { [BIND_OPTION]: '127.0.0.1' } });
    expect((await docker.getNetwork('fleet-swarm').inspect()).ConfigFrom).toEqual({ Network: 'fleet-swarm-bind' });
    await d.remove!('bound');
  });

  it('refuses a tasks network that binds every interface, saying what to do', async () => {
    await docker.createNetwork({ Name: 'legacy-net', Driver: 'bridge', Scope: 'swarm' } as Docker.NetworkCreateOptions);
    const err = await driver({ network: 'legacy-net' }).start(spec('legacy'), { ready: ok }).catch((e) => e);
    expect(isFleetError(err, 'DRIVER')).toBe(true);
    expect(err.message).toMatch(/^swarm: network legacy-net exists but is not created from fleet-swarm-bind, so its tasks' ports listen on every interface of their node; remove it .* or set swarm\.network in fleet\.yaml to a new name/);
    await docker.createNetwork({ Name: 'open-bind', ConfigOnly: true, Options: { [BIND_OPTION]: '0.0.0.0' } } as Docker.NetworkCreateOptions);
    const open = await driver({ network: 'other-net', bindNetwork: 'open-bind' }).start(spec('legacy'), { ready: ok }).catch((e) => e);
    expect(open.message).toContain(`run: docker network create --config-only -o ${BIND_OPTION}=<node address> open-bind`);
    expect(await docker.listServices({ filters: { name: [serviceName('legacy')] } })).toEqual([]);
  });
});
