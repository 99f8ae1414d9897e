// The swarm driver's output and exits on a real single-node swarm (a private dockerd made a swarm manager by the
// harness): `logs` reads the service's log (all its tasks, oldest first) through the manager's ServiceLogs API,
// and a task that fails (its container killed) is reported through `onExit` from the task list `list` already
// reads, and the instance counts as not running until the daemon starts it again.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Driver, InstanceSpec } from '../daemon/core/types.ts';
import { collectLines } from '../daemon/drivers/log-file.ts';
import { createSwarmDriver } from '../daemon/drivers/swarm.ts';
import { splitStamp } from '../daemon/drivers/swarm-logs.ts';
import { exitCodeOf, liveTasks, newExits, type Service, type Task } from '../daemon/drivers/swarm-tasks.ts';
import { startDockerd, type TestDockerd } from './harness/dockerd.ts';
import { buildTestImage } from './harness/image.ts';

const SECRET = 'jwt-secret-value-77d1aa';
const log = pino({ level: 'silent' });

describe('service log timestamps', () => {
  it.each([
    // Go trims trailing zeros of the fraction: .1 is later than .09, not earlier.
    ['2026-11-29T09:25:21.1Z a', '2026-11-29T09:25:21.09Z b'],
    ['2026-11-29T09:25:21Z a', '2026-11-29T09:25:20.999999999Z b'],
    ['2026-11-29T10:25:21.5+01:00 a', '2026-11-29T09:25:21.4Z b'],
  ])('orders %j after %j and strips the time', (later, earlier) => {
    expect(splitStamp(later).key > splitStamp(earlier).key).toBe(true);
    expect(splitStamp(later).text).toBe('a');
  });

  it('keeps a line without a time as it is', () => {
    expect(splitStamp('plain text')).toEqual({ key: '', text: 'plain text' });
    expect(splitStamp('2026-11-29T09:25:21Z  two spaces').text).toBe(' two spaces');
  });
});

describe('task exits, read from the task list', () => {
  const svc = (over: Partial<Service> = {}): Service => ({
    ID: 's1', Version: { Index: 1 }, Spec: { Labels: { 'atomo.fleet.project': 'acme', 'atomo.fleet.spec-hash': 'h1' }, Mode: { Replicated: { Replicas: 1 } } }, ...over,
  });
  const task = (id: string, state: string, over: Partial<Task> & { hash?: string; desired?: string } = {}): Task => ({
    ID: id, ServiceID: 's1', CreatedAt: `2026-11-29T09:00:0${id.length}Z`, DesiredState: over.desired ?? 'shutdown',
    Status: { State: state, ...over.Status }, Spec: { ContainerSpec: { Labels: { 'atomo.fleet.spec-hash': over.hash ?? 'h1' } } },
  });

  it.each([
    ['a live task that failed', [task('t1', 'failed', { Status: { State: 'failed', ContainerStatus: { ExitCode: 137 } } })], ['t1'], [137]],
    ['a live task that completed (exit 0)', [task('t1', 'complete')], ['t1'], [0]],
    ['a task Swarm had replaced before it ended (node lost)', [task('t1', 'failed')], [], []],
    ['a task that still runs', [task('t1', 'running', { desired: 'running' })], ['t1'], []],
    ['a task of another spec (a deploy that failed)', [task('t1', 'failed', { hash: 'h2' })], ['t1'], []],
  ])('%s', (_, tasks, live, codes) => {
    expect(newExits([svc()], tasks, new Set(live)).map((e) => e.exitCode)).toEqual(codes);
  });

  it('reports nothing while an update or rollback runs, nor for a service scaled to 0', () => {
    const failed = [task('t1', 'failed')];
    expect(newExits([svc({ UpdateStatus: { State: 'rollback_started' } })], failed, new Set(['t1']))).toEqual([]);
    expect(newExits([svc({ Spec: { ...svc().Spec, Mode: { Replicated: { Replicas: 0 } } } })], failed, new Set(['t1']))).toEqual([]);
    expect(newExits([svc({ UpdateStatus: { State: 'completed' } })], failed, new Set(['t1']))).toHaveLength(1);
  });

  it('knows the live tasks and reads an exit code from Swarm\'s error when the container status has none', () => {
    expect([...liveTasks([task('a', 'running', { desired: 'running' }), task('b', 'failed', { desired: 'running' }), task('c', 'running')])]).toEqual(['a']);
    expect(exitCodeOf(task('t', 'failed', { Status: { State: 'failed', Err: 'task: non-zero exit (137)' } }))).toBe(137);
    expect(exitCodeOf(task('t', 'rejected', { Status: { State: 'rejected', Err: 'No such image' } }))).toBeNull();
  });
});

describe('swarm driver logs and exits on a single-node swarm', () => {
  const run = Math.random().toString(36).slice(2, 7);
  let engine: TestDockerd;
  let docker: Docker;
  let image: string;
  let dir: string;
  const drivers: Driver[] = [];

  function driver(): Driver {
    const d = createSwarmDriver({ socketPath: engine.socketPath, log, health: { intervalMs: 500, timeoutMs: 2000, retries: 3, startPeriodMs: 10_000 }, monitorMs: 1500 });
    drivers.push(d);
    return d;
  }

  function spec(id: string, over: Partial<InstanceSpec> = {}): InstanceSpec {
    return {
      id, commit: 'c0ffee1234567890c0ffee1234567890c0ffee12', image, env: { MARK: 'one', JWT_SECRET: SECRET },
      schemaPath: join(dir, 'schema.ts'), port: 3000, resources: { memory: '64m' }, specHash: `1${id}`.padEnd(16, '0'), logDir: dir, ...over,
    };
  }

  const ok = async (upstream: string) => (await fetch(`http://${upstream}/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => null))?.status === 200;
  const containerOf = async (taskId: string) => ((await docker.getTask(taskId).inspect()) as { Status: { ContainerStatus: { ContainerID: string } } }).Status.ContainerStatus.ContainerID;

  beforeAll(async () => {
    engine = await startDockerd({ swarm: true });
    docker = engine.docker;
    image = await buildTestImage(engine, 'tiny');
    dir = mkdtempSync(join(tmpdir(), 'fleet-swarm-logs-'));
    writeFileSync(join(dir, 'schema.ts'), 'export interface Widget { id: string; }\n');
  }, 120_000);

  afterAll(async () => {
    for (const d of drivers) await d.close?.();
    await engine?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('reads the service\'s output (every task, oldest first, at most `lines`), follows it until aborted, and yields nothing for an unknown project', async () => {
    const d = driver();
    const id = `talk${run}`;
    const first = await d.start(spec(id), { ready: ok });
    await expect.poll(() => collectLines(d.logs!(id, { lines: 10 })), { timeout: 30_000 }).toEqual(['tiny test server on 3000']);
    // A second task (a changed spec) logs after the first one: both tasks' lines, the newest task's last.
    const second = await d.start(spec(id, { env: { MARK: 'two', JWT_SECRET: SECRET }, specHash: `2${id}`.padEnd(16, '0') }), { ready: ok });
    expect(second.ref).not.toBe(first.ref);
    await expect.poll(() => collectLines(d.logs!(id, { lines: 10 })), { timeout: 30_000 }).toEqual(['tiny test server on 3000', 'tiny test server on 3000']);
    expect(await collectLines(d.logs!(id, { lines: 1 }))).toEqual(['tiny test server on 3000']);
    expect(await collectLines(d.logs!(id, { lines: 0 }))).toEqual([]);
    // No timestamps, no details: the lines as the task wrote them, and never its environment.
    expect((await collectLines(d.logs!(id, { lines: 100 }))).join('\n')).not.toContain(SECRET);

    const ac = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      for await (const line of d.logs!(id, { lines: 1, follow: true, signal: ac.signal })) seen.push(line);
    })();
    await expect.poll(() => seen, { timeout: 30_000 }).toEqual(['tiny test server on 3000']);
    // A new task's first line arrives while following, once (the follow starts after the lines it read).
    await d.start(spec(id, { env: { MARK: 'three', JWT_SECRET: SECRET }, specHash: `3${id}`.padEnd(16, '0') }), { ready: ok });
    await expect.poll(() => seen, { timeout: 30_000 }).toEqual(['tiny test server on 3000', 'tiny test server on 3000']);
    ac.abort();
    await done;
    expect(await collectLines(d.logs!(`nobody${run}`, { lines: 10 }))).toEqual([]);
    await d.remove!(id);
  }, 240_000);

  it('reports a task that fails as an exit, once, and lists the instance as not running until it is started again', async () => {
    const d = driver();
    const exits: [string, number | null][] = [];
    d.onExit!((pid, code) => exits.push([pid, code]));
    const id = `crash${run}`;
    const inst = await d.start(spec(id), { ready: ok });
    expect((await d.list()).find((i) => i.id === id)).toMatchObject({ running: true, ref: inst.ref });
    // The container dies (SIGKILL): Swarm marks the task failed and starts another one after its restart delay.
    await docker.getContainer(await containerOf(inst.ref)).kill();
    await expect.poll(async () => { await d.list(); return exits; }, { timeout: 30_000 }).toEqual([[id, 137]]);
    // Until the daemon starts it again (Swarm already does), the instance is the one that exited: the daemon's
    // backoff counts the crash, its restart records it, the health monitor probes the new task.
    const seen = (await d.list()).find((i) => i.id === id)!;
    expect(seen).toMatchObject({ running: false, exitCode: 137 });
    const again = await d.start(spec(id), { ready: ok });
    expect(again.ref).not.toBe(inst.ref);
    expect(await ok(again.upstream)).toBe(true);
    expect((await d.list()).find((i) => i.id === id)).toMatchObject({ running: true, ref: again.ref, exitCode: null });
    // Reported once: more lists, and a fresh driver (a daemon restart) reports nothing old.
    await d.list();
    const fresh = driver();
    const freshExits: unknown[] = [];
    fresh.onExit!((...a) => freshExits.push(a));
    await fresh.list();
    await fresh.list();
    expect(exits).toEqual([[id, 137]]);
    expect(freshExits).toEqual([]);
    await d.remove!(id);
  }, 240_000);

  it('does not report the tasks of a deploy that Swarm rolled back, nor a stop, as exits', async () => {
    const d = driver();
    const exits: unknown[] = [];
    d.onExit!((...a) => exits.push(a));
    const id = `roll${run}`;
    await d.start(spec(id), { ready: ok });
    await d.list();
    const err = await d.start(spec(id, { env: { FAIL_START: '1' }, specHash: `2${id}`.padEnd(16, '0') }), { ready: ok }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    await d.list();
    await d.stop(id);
    await d.list();
    expect(exits).toEqual([]);
    await d.remove!(id);
  }, 240_000);
});
