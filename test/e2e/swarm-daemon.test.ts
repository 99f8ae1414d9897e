// The daemon on a real two-node Docker Swarm: fleet.yaml says `driver: swarm` and names the manager's socket; the
// stand-in image runs as Swarm tasks on either node (a worker dockerd in a network namespace) and reaches the test
// Postgres through postgres.instanceHost (the manager's veth address); every request goes through a real Caddy.
// Then node loss: the worker's whole "machine" is killed, Swarm reschedules the task on the manager, the daemon
// follows it and the gateway answers again within the bound stated below.
import { execFile } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { createSwarmDriver } from '../../daemon/drivers/swarm.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { operatorTokenRef } from '../../daemon/api/token.ts';
import type { TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';
import type { SwarmCluster } from '../harness/swarm-cluster.ts';
import { startSwarmFleet, type SwarmFleet } from '../harness/swarm-fleet.ts';

/** Node loss → requests through the gateway succeed again within this bound (measured and printed below). */
const RECOVERY_BOUND_MS = 60_000;
/** Swarm's dispatcher heartbeat in this swarm: a dead node is marked down a few heartbeats later. */
const HEARTBEAT_SECONDS = 1;

const FLEET_JS = resolve(import.meta.dirname, '../../scripts/fleet.js');
const run = Math.random().toString(36).slice(2, 7);
const WEB = `web${run}`;
const HOT = `hot${run}`;

let sf: SwarmFleet;
let cluster: SwarmCluster;
let f: TestFleet;
let image: string;
const through = (host: string, path?: string) => sf.through(host, path);
const who = (id: string) => sf.who(id);

function project(id: string, extra: Record<string, unknown> = {}) {
  writeProject(f.repo, id, { manifest: { runtime: { image }, resources: { memory: '256m' }, ...extra } });
}

async function service(id: string): Promise<Docker.Service | undefined> {
  return (await cluster.manager.docker.listServices({ filters: { label: [`atomo.fleet.project=${id}`] } }))[0];
}

interface TaskSeen { ID: string; NodeID?: string; DesiredState: string; Status: { State: string } }
async function tasks(id: string): Promise<TaskSeen[]> {
  const svc = await service(id);
  return svc ? (await cluster.manager.docker.listTasks({ filters: { service: [svc.ID] } })) as TaskSeen[] : [];
}
const runningTasks = async (id: string) => (await tasks(id)).filter((t) => t.Status.State === 'running' && t.DesiredState === 'running');

/** Requests through the gateway, one after another until stopped: how many were answered by `id`, and the others. */
function watch(id: string) {
  const seen = { ok: 0, failed: [] as string[] };
  let on = true;
  const loop = (async () => {
    while (on) {
      const w = await who(id);
      if (w === id) seen.ok++;
      else seen.failed.push(w);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return { seen, stop: async () => { on = false; await loop; return seen; } };
}

beforeAll(async () => {
  sf = await startSwarmFleet({
    heartbeatSeconds: HEARTBEAT_SECONDS,
    commit: (fleet, img) => {
      f = fleet;
      image = img;
      project(WEB);
      f.repo.commit('swarm fleet with one project');
    },
  });
  cluster = sf.cluster;
}, 240_000);

afterAll(async () => {
  await sf?.stop();
}, 120_000);

describe('the daemon with driver: swarm on a two-node swarm', () => {
  it('deploys a project as one Swarm service that answers through the gateway, using its database', async () => {
    const head = f.repo.head();
    const rec = await f.until(WEB, (p) => p.status === 'running' && p.appliedCommit === head, 120_000);
    const svc = await service(WEB);
    expect(svc?.Spec?.Name).toBe(`fleet-${WEB}`);
    // The task's node address and host-mode port: one of the two nodes.
    expect([cluster.manager.addr, cluster.worker.addr]).toContain(rec.upstream!.split(':')[0]);
    await expect.poll(() => who(WEB), { timeout: 30_000 }).toBe(WEB);
    // The stand-in migrated its database before it bound its port: the task reached Postgres.
    expect((await through(`${WEB}.localhost`, '/ready')).status).toBe(200);
  }, 180_000);

  it('rolls an env change out start-first, the gateway answering all along', async () => {
    const before = (await runningTasks(WEB)).map((t) => t.ID);
    const w = watch(WEB);
    project(WEB, { env: { GREETING: 'two' } });
    const c2 = f.repo.commit('web: greeting');
    await f.until(WEB, (p) => p.status === 'running' && p.appliedCommit === c2, 120_000);
    await expect.poll(() => who(WEB), { timeout: 30_000 }).toBe(WEB);
    const seen = await w.stop();
    const env = ((await service(WEB))?.Spec?.TaskTemplate as { ContainerSpec: { Env: string[] } }).ContainerSpec.Env;
    expect(env).toContain('GREETING=two');
    expect((await service(WEB))?.Spec?.UpdateConfig).toMatchObject({ Order: 'start-first' });
    const now = (await runningTasks(WEB)).map((t) => t.ID);
    expect(now).toHaveLength(1);
    expect(before).not.toContain(now[0]);
    console.log(`env rollout: ${seen.ok} requests answered, ${seen.failed.length} not (${[...new Set(seen.failed)].join(', ')})`);
    expect(seen.ok).toBeGreaterThan(0);
    expect(seen.failed).toEqual([]);
    // One replacement, recorded once: the daemon did not see the old task again while Swarm finished the update.
    expect((await f.events(WEB)).filter((e) => e.commit === c2 && e.action === 'restart')).toHaveLength(1);
  }, 180_000);

  it('shows the service\'s output through `fleet logs` and the dashboard, never a secret', async () => {
    const secrets = await f.running!.secrets.getMany([`/atomo/${WEB}/JWT_SECRET`]);
    // The CLI reads fleet.yaml's swarm socket like the daemon does.
    const cli = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      execFile(process.execPath, [FLEET_JS, 'logs', WEB, '--lines', '20', '--repo', f.repo.dir, '--state-dir', f.stateDir], { env: { ...process.env, FLEET_DEBUG: '' } },
        (err, stdout, stderr) => done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
    });
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('*** STAND-IN');
    expect(cli.stdout.trim().split('\n').length).toBeLessThanOrEqual(20);
    const token = await f.running!.secrets.get(operatorTokenRef('/atomo'));
    const page = await fetch(`${f.running!.httpUrl}/projects/${WEB}`, { headers: { authorization: `Bearer ${token}` } });
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(html).toContain('*** STAND-IN');
    for (const text of [cli.stdout, html]) expect(text).not.toContain(secrets[`/atomo/${WEB}/JWT_SECRET`]);
  }, 60_000);

  it('stops a project by scaling its service to 0', async () => {
    project(WEB, { env: { GREETING: 'two' }, state: 'stopped' });
    const c3 = f.repo.commit('web: stop');
    await f.until(WEB, (p) => p.status === 'stopped' && p.appliedCommit === c3, 60_000);
    expect((await service(WEB))?.Spec?.Mode).toEqual({ Replicated: { Replicas: 0 } });
    await expect.poll(async () => (await runningTasks(WEB)).length, { timeout: 30_000 }).toBe(0);
    expect(await who(WEB)).not.toBe(WEB);
  }, 120_000);

  it('survives the loss of the node that runs a project: Swarm moves the task, the gateway follows', async () => {
    // The hot tier is the worker alone at deploy time, so the task lands there.
    project(HOT, { placement: { constraints: ['node.labels.tier==hot'] } });
    const c4 = f.repo.commit('hot: on the hot tier');
    const placed = await f.until(HOT, (p) => p.status === 'running' && p.appliedCommit === c4, 120_000);
    expect(placed.upstream!.startsWith(`${cluster.worker.addr}:`)).toBe(true);
    await expect.poll(() => who(HOT), { timeout: 30_000 }).toBe(HOT);
    // The operator adds the manager to the hot tier: running tasks stay where they are (Swarm does not rebalance).
    await cluster.label(cluster.manager, 'tier', 'hot');

    const lost = Date.now();
    await cluster.killWorker();
    await expect.poll(() => who(HOT), { timeout: RECOVERY_BOUND_MS, interval: 200 }).toBe(HOT);
    const recoveredMs = Date.now() - lost;
    console.log(`NODE LOSS: requests through the gateway succeeded again ${(recoveredMs / 1000).toFixed(1)} s after the worker's engine was killed (bound ${RECOVERY_BOUND_MS / 1000} s, swarm heartbeat ${HEARTBEAT_SECONDS} s)`);
    const moved = await f.project(HOT);
    expect(moved!.upstream!.startsWith(`${cluster.manager.addr}:`)).toBe(true);
    const [task] = await runningTasks(HOT);
    expect(task.NodeID).toBe(cluster.manager.nodeId);
    // Not a crash: while Swarm starts the replacement the daemon waits for it (at most one `rescheduled` event),
    // it counts no restart and starts nothing itself.
    const since = (await f.running!.daemon.registry.events(HOT)).filter((e) => Date.parse(e.at) >= lost);
    expect(since.filter((e) => e.action === 'restart').map((e) => JSON.stringify(e))).toEqual([]);
    expect(since.filter((e) => e.action === 'rescheduled').length).toBeLessThanOrEqual(1);
    expect(moved!.restarts).toBe(placed.restarts);

    // The worker comes back: nothing that serves changes.
    const w = watch(HOT);
    await cluster.startWorker();
    // A few daemon passes and health rounds after the node is back (the daemon's pass interval is 0.3 s).
    for (let i = 0; i < 20; i++) {
      expect((await runningTasks(HOT)).map((t) => t.ID)).toEqual([task.ID]);
      await new Promise((r) => setTimeout(r, 250));
    }
    const seen = await w.stop();
    expect(seen.failed).toEqual([]);
    expect((await f.project(HOT))!.upstream).toBe(moved!.upstream);
    expect((await f.project(HOT))!.status).toBe('running');
  }, 300_000);

  it('records a task that crashes as a crash restart; the gateway follows the task Swarm started instead', async () => {
    const before = (await f.project(HOT))!;
    const [task] = await runningTasks(HOT);
    const container = ((await cluster.manager.docker.getTask(task.ID).inspect()) as { Status: { ContainerStatus: { ContainerID: string } } }).Status.ContainerStatus.ContainerID;
    const crashed = Date.now();
    await cluster.manager.docker.getContainer(container).kill();
    await expect.poll(async () => (await f.project(HOT))!.restarts, { timeout: 60_000 }).toBe(before.restarts + 1);
    await expect.poll(() => who(HOT), { timeout: 60_000, interval: 200 }).toBe(HOT);
    console.log(`TASK CRASH: the gateway answered again ${((Date.now() - crashed) / 1000).toFixed(1)} s after the task's container was killed`);
    // The node loss above was seen as a crash too (no task ran for a while); this one is the exit reported.
    const restarts = (await f.running!.daemon.registry.events(HOT)).filter((e) => e.action === 'restart' && Date.parse(e.at) >= crashed);
    expect(restarts.map((e) => e.detail)).toEqual([expect.objectContaining({ cause: 'crash', exitCode: 137 })]);
    const after = (await f.project(HOT))!;
    expect(after.status).toBe('running');
    expect(after.upstream).not.toBe(before.upstream);
  }, 120_000);

  it('observes every project with one task list and one node list, however many services there are', async () => {
    // A relay between the driver and the manager's socket that counts the requests by endpoint (real wire protocol).
    const dir = mkdtempSync(join(tmpdir(), 'fleet-relay-'));
    const calls: string[] = [];
    const relay = createServer((client) => {
      const engine = connect(cluster.manager.socketPath);
      // Connections are kept alive: every request line in the stream counts.
      client.on('data', (chunk: Buffer) => {
        for (const m of chunk.toString('latin1').matchAll(/^(?:GET|POST|PUT|DELETE|HEAD) (?:\/v[\d.]+)?(\/[a-z]+)/gm)) calls.push(m[1]);
      });
      client.pipe(engine).pipe(client);
      client.on('error', () => engine.destroy());
      engine.on('error', () => client.destroy());
    });
    await new Promise<void>((r) => relay.listen(join(dir, 'relay.sock'), r));
    try {
      const driver = createSwarmDriver({ socketPath: join(dir, 'relay.sock'), log: pino({ level: 'silent' }) });
      const listed = await driver.list();
      expect(listed.map((i) => i.id).sort()).toEqual([HOT, WEB].sort());
      expect(calls.filter((c) => c === '/tasks')).toHaveLength(1);
      expect(calls.filter((c) => c === '/nodes')).toHaveLength(1);
      expect(calls.filter((c) => c === '/services')).toHaveLength(1);
    } finally {
      relay.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
