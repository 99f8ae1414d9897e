// The process driver with real child processes (the stand-in) and a real Postgres.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { startPostgres, type TestPostgres } from './harness/postgres.ts';
import { freePort } from './harness/ports.ts';
import { createProcessDriver, type ProcessDriverOptions } from '../daemon/drivers/process.ts';
import { createDriver } from '../daemon/drivers/index.ts';
import { isFleetError } from '../daemon/core/errors.ts';
import type { Driver, InstanceSpec } from '../daemon/core/types.ts';

const PROCESS_TS = fileURLToPath(new URL('../daemon/drivers/process.ts', import.meta.url));

let pgc: TestPostgres;
let root: string;
let stateDir: string;
let n = 0;
const drivers: Driver[] = [];
const logLines: string[] = [];

beforeAll(async () => {
  pgc = await startPostgres();
  root = mkdtempSync(join(tmpdir(), 'driver-process-'));
});

afterEach(async () => {
  // Stop through a fresh driver: it finds every instance from the pid files, whoever started it.
  const cleaner = newDriver();
  for (const inst of await cleaner.list()) await cleaner.stop(inst.id);
  for (const d of drivers.splice(0)) await d.close?.();
  delete process.env.FLEET_TEST_LEAK;
});

afterAll(async () => {
  await pgc?.destroy();
  rmSync(root, { recursive: true, force: true });
});

function newDriver(over: Partial<ProcessDriverOptions> = {}): Driver {
  stateDir ??= join(root, 'state');
  const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  const d = createProcessDriver({ stateDir, log, ...over });
  drivers.push(d);
  return d;
}

async function spec(id: string, over: Partial<InstanceSpec> & { extraEnv?: Record<string, string> } = {}): Promise<InstanceSpec> {
  const dir = join(root, `${id}-${++n}`);
  const schemaPath = join(root, `${id}-${n}.schema.ts`);
  writeFileSync(schemaPath, 'export interface Widget { id: string; name: string; }\n');
  const db = `db_${id}_${n}`;
  const url = await pgc.database(db);
  const port = over.port ?? (await freePort());
  const { extraEnv, ...rest } = over;
  return {
    id, commit: 'c0ffee1', env: {
      DATABASE_URL: url, JWT_SECRET: 'secret-x', ATOMO_SCHEMA_PATH: schemaPath, HOST: '127.0.0.1', PORT: String(port),
      ATOMO_PROJECT_ID: id, ATOMO_ENV: 'production', ATOMO_SCHEMA_WATCH: '0', ...extraEnv,
    },
    schemaPath, port, resources: {}, specHash: 'hash-1', logDir: join(dir, 'logs'), ...rest,
  };
}

async function status(upstream: string, path = '/ready'): Promise<number> {
  try {
    return (await fetch(`http://${upstream}${path}`)).status;
  } catch {
    return 0;
  }
}

const pidOf = (ref: string) => Number(ref.replace('pid:', ''));
const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

describe('process driver', () => {
  it('starts the stand-in detached, with only the spec env, logs in logDir and a pid file', async () => {
    process.env.FLEET_TEST_LEAK = 'daemon-only';
    const d = newDriver();
    const s = await spec('alpha');
    const inst = await d.start(s);
    expect(inst).toMatchObject({ id: 'alpha', running: true, upstream: `127.0.0.1:${s.port}`, specHash: 'hash-1', commit: 'c0ffee1' });
    expect(await d.list()).toEqual([inst]);
    await expect.poll(() => status(inst.upstream), { timeout: 15_000 }).toBe(200);

    const environ = readFileSync(`/proc/${pidOf(inst.ref)}/environ`, 'latin1').split('\0');
    expect(environ).toContain('ATOMO_PROJECT_ID=alpha');
    expect(environ).toContain(`PATH=${process.env.PATH}`);
    expect(environ.some((e) => e.startsWith('FLEET_TEST_LEAK='))).toBe(false);

    const pidFile = JSON.parse(readFileSync(join(stateDir, 'alpha.json'), 'utf8'));
    expect(pidFile).toMatchObject({ pid: pidOf(inst.ref), specHash: 'hash-1', commit: 'c0ffee1', port: s.port });
    expect(readFileSync(join(s.logDir, 'instance.log'), 'utf8')).toContain('STAND-IN');
    expect(logLines.join('')).toContain('running the STAND-IN instance');
    expect(logLines.join('')).not.toContain('secret-x');
  });

  it('keeps an instance with the same specHash; a new specHash starts next to it on a fresh port, the old one stops only on retire', async () => {
    const d = newDriver({ drainMs: 0 });
    const exits: Array<[string, number | null]> = [];
    d.onExit!((id, code) => exits.push([id, code]));
    const s = await spec('beta');
    const first = await d.start(s);
    await expect.poll(() => status(first.upstream), { timeout: 15_000 }).toBe(200);
    expect((await d.start(s)).ref).toBe(first.ref);

    // The old one answers on its own port all through the replacement's start.
    const oldDuringProbe: number[] = [];
    const second = await d.start({ ...s, specHash: 'hash-2', commit: 'c0ffee2' }, {
      ready: async (upstream) => {
        oldDuringProbe.push(await status(first.upstream));
        return (await status(upstream)) === 200;
      },
    });
    expect(oldDuringProbe.length).toBeGreaterThan(0);
    expect(oldDuringProbe.every((c) => c === 200)).toBe(true);
    expect(second.ref).not.toBe(first.ref);
    expect(second.upstream).not.toBe(first.upstream);
    expect(await status(second.upstream)).toBe(200);
    expect(alive(pidOf(first.ref))).toBe(true);
    expect(await status(first.upstream)).toBe(200);
    // list() and the pid file name the current instance only; the old one is recorded as retiring.
    expect(await d.list()).toEqual([expect.objectContaining({ running: true, specHash: 'hash-2', commit: 'c0ffee2', ref: second.ref })]);
    const pidFile = JSON.parse(readFileSync(join(stateDir, 'beta.json'), 'utf8'));
    expect(pidFile).toMatchObject({ pid: pidOf(second.ref), specHash: 'hash-2', retiring: [expect.objectContaining({ pid: pidOf(first.ref) })] });

    // Still routed to the old one (the gateway has not switched): it keeps serving.
    await d.retire!(new Set([first.upstream]));
    expect(alive(pidOf(first.ref))).toBe(true);
    // Routed to the new one: the old one stops, and that stop is not an exit for the reconciler.
    await d.retire!(new Set([second.upstream]));
    expect(alive(pidOf(first.ref))).toBe(false);
    expect(alive(pidOf(second.ref))).toBe(true);
    expect(JSON.parse(readFileSync(join(stateDir, 'beta.json'), 'utf8')).retiring).toBeUndefined();
    expect(exits).toEqual([]);
  });

  it('a restarted daemon (a new driver) finds a left-over retiring instance and stops it on retire', async () => {
    const s = await spec('iota');
    const first = await newDriver().start(s);
    await expect.poll(() => status(first.upstream), { timeout: 15_000 }).toBe(200);
    const second = await newDriver().start({ ...s, specHash: 'hash-2' }, { ready: async (u) => (await status(u)) === 200 });
    expect(alive(pidOf(first.ref))).toBe(true);

    const restarted = newDriver({ drainMs: 0 });
    expect(await restarted.list()).toEqual([expect.objectContaining({ id: 'iota', ref: second.ref })]);
    await restarted.retire!(new Set([second.upstream]));
    expect(alive(pidOf(first.ref))).toBe(false);
    // stop() takes the current one and anything still retiring.
    const third = await restarted.start({ ...s, specHash: 'hash-3' }, { ready: async (u) => (await status(u)) === 200 });
    await restarted.stop('iota');
    expect(alive(pidOf(second.ref))).toBe(false);
    expect(alive(pidOf(third.ref))).toBe(false);
    expect(await restarted.list()).toEqual([]);
  });

  it('a replacement that exits or never answers /ready is stopped; the old one keeps serving as the current instance', async () => {
    const d = newDriver({ readyTimeoutMs: 1500 });
    const exits: Array<[string, number | null]> = [];
    d.onExit!((id, code) => exits.push([id, code]));
    const s = await spec('kappa');
    const first = await d.start(s);
    await expect.poll(() => status(first.upstream), { timeout: 15_000 }).toBe(200);
    const ready = async (u: string) => (await status(u)) === 200;

    // Exits at boot.
    const exiting = await d.start({ ...s, specHash: 'hash-2', command: [process.execPath, '-e', 'console.error("bad flag"); process.exit(3)'] }, { ready }).catch((e) => e);
    expect(isFleetError(exiting, 'DRIVER')).toBe(true);
    expect(exiting.message).toMatch(/did not become ready: it exited with code 3/);
    expect(exiting.message).toContain(join(s.logDir, 'instance.log'));
    expect(exiting.message).toMatch(/keeps serving/);

    // Never answers /ready within the wait: stopped.
    let startingPid = 0;
    const silent = await d.start({ ...s, specHash: 'hash-3', command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'] }, {
      ready: async () => {
        startingPid = JSON.parse(readFileSync(join(stateDir, 'kappa.json'), 'utf8')).starting?.pid ?? 0;
        return false;
      },
    }).catch((e) => e);
    expect(isFleetError(silent, 'DRIVER')).toBe(true);
    expect(silent.message).toMatch(/did not answer \/ready within 1.5 s/);
    expect(startingPid).toBeGreaterThan(0);
    expect(alive(startingPid)).toBe(false);

    // A command that cannot be started at all.
    const missing = await d.start({ ...s, specHash: 'hash-4', command: ['/nonexistent/atomo-server'] }, { ready }).catch((e) => e);
    expect(isFleetError(missing, 'DRIVER')).toBe(true);
    expect(missing.message).toMatch(/nonexistent.*keeps serving/);

    expect(alive(pidOf(first.ref))).toBe(true);
    expect(await status(first.upstream)).toBe(200);
    expect(await d.list()).toEqual([expect.objectContaining({ id: 'kappa', running: true, specHash: 'hash-1', ref: first.ref })]);
    const pidFile = JSON.parse(readFileSync(join(stateDir, 'kappa.json'), 'utf8'));
    expect(pidFile.starting).toBeUndefined();
    expect(pidFile.retiring).toBeUndefined();
    // Neither the failed replacements nor their stop are exits of the project's instance.
    expect(exits).toEqual([]);
  });

  it('re-adopts instances after a daemon restart and stops them', async () => {
    const s = await spec('gamma');
    const first = await newDriver().start(s);
    await expect.poll(() => status(first.upstream), { timeout: 15_000 }).toBe(200);

    const restarted = newDriver();
    expect(await restarted.list()).toEqual([expect.objectContaining({ id: 'gamma', running: true, ref: first.ref })]);
    expect((await restarted.start(s)).ref).toBe(first.ref);
    await restarted.stop('gamma');
    expect(alive(pidOf(first.ref))).toBe(false);
    expect(await restarted.list()).toEqual([]);
    await restarted.stop('gamma'); // stopping what does not run is fine
  });

  it('stops an instance no pid file names (a daemon killed between spawn and pid file) before starting one', async () => {
    const s = await spec('orphan');
    const first = await newDriver().start(s);
    await expect.poll(() => status(first.upstream), { timeout: 15_000 }).toBe(200);
    // What a daemon killed right after spawn leaves: a live instance, and no pid file saying so.
    rmSync(join(stateDir, 'orphan.json'));
    const next = await newDriver().start({ ...s, port: await freePort() });
    await expect.poll(() => alive(pidOf(first.ref)), { timeout: 15_000 }).toBe(false);
    expect(next.ref).not.toBe(first.ref);
    expect(alive(pidOf(next.ref))).toBe(true);
    await newDriver().stop('orphan');
  });

  it('keeps instances running when the daemon is SIGKILLed', async () => {
    const s = await spec('delta');
    const script = join(root, 'daemon.mts'); // .mts: ESM outside any package.json
    const pinoPath = createRequire(import.meta.url).resolve('pino');
    writeFileSync(script, `import pino from ${JSON.stringify(pinoPath)};
import { createProcessDriver } from ${JSON.stringify(PROCESS_TS)};
const d = createProcessDriver({ stateDir: ${JSON.stringify(stateDir)}, log: pino({ level: 'silent' }) });
const inst = await d.start(${JSON.stringify(s)});
console.log(inst.ref);
setInterval(() => {}, 1000);
`);
    const daemon = spawn(process.execPath, ['--import', 'tsx', script], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    daemon.stdout!.on('data', (b) => (out += b));
    let exited = false;
    const gone = new Promise((r) => daemon.on('exit', r)).finally(() => (exited = true));
    await expect.poll(() => (exited ? 'daemon exited early' : out), { timeout: 20_000 }).toMatch(/pid:\d+|exited/);
    expect(out).toMatch(/pid:\d+/);
    daemon.kill('SIGKILL');
    await gone;
    const ref = out.trim();
    await expect.poll(() => status(`127.0.0.1:${s.port}`), { timeout: 15_000 }).toBe(200);
    expect(await newDriver().list()).toEqual([expect.objectContaining({ id: 'delta', running: true, ref })]);
  });

  it('does not adopt or kill a process that reuses a stale pid', async () => {
    const d = newDriver();
    const s = await spec('epsilon');
    const stale = { pid: process.pid, specHash: 'hash-1', commit: 'c0ffee1', port: s.port, startedAt: new Date().toISOString() };
    writeFileSync(join(stateDir, 'epsilon.json'), JSON.stringify(stale));
    expect(await d.list()).toEqual([expect.objectContaining({ id: 'epsilon', running: false })]);

    await d.stop('epsilon'); // must not signal the test runner (we would not be here)
    expect(existsSync(join(stateDir, 'epsilon.json'))).toBe(false);

    writeFileSync(join(stateDir, 'epsilon.json'), JSON.stringify(stale));
    const inst = await d.start(s);
    expect(inst.ref).not.toBe(`pid:${process.pid}`);
    expect(inst.running).toBe(true);
    await expect.poll(() => status(inst.upstream), { timeout: 15_000 }).toBe(200);
  });

  it('reports exit code 0 after a schema change and non-zero for a boot failure', async () => {
    const d = newDriver();
    const exits: Array<[string, number | null]> = [];
    d.onExit!((id, code) => exits.push([id, code]));
    const watched = await spec('zeta', { extraEnv: { ATOMO_SCHEMA_WATCH: '1', ATOMO_SCHEMA_WATCH_INTERVAL: '1' } });
    const inst = await d.start(watched);
    await expect.poll(() => status(inst.upstream), { timeout: 15_000 }).toBe(200);
    writeFileSync(watched.schemaPath, 'export interface Widget { id: string; size: number; }\n');
    await expect.poll(() => exits, { timeout: 15_000 }).toEqual([['zeta', 0]]);
    expect(await d.list()).toEqual([expect.objectContaining({ id: 'zeta', running: false, exitCode: 0 })]);

    await d.start(await spec('eta', { extraEnv: { STANDIN_FAIL_AT_BOOT: '1' } }));
    await expect.poll(() => exits, { timeout: 15_000 }).toEqual([['zeta', 0], ['eta', 1]]);
  });

  it('escalates to SIGKILL when an instance ignores SIGTERM', async () => {
    const d = newDriver();
    const stubborn = 'process.on("SIGTERM", () => {}); console.log("handler installed"); setInterval(() => {}, 1000)';
    const s = await spec('theta', { command: [process.execPath, '-e', stubborn] });
    const inst = await d.start(s);
    const logFile = join(s.logDir, 'instance.log');
    await expect.poll(() => readFileSync(logFile, 'utf8'), { timeout: 5_000 }).toContain('handler installed');
    const t0 = Date.now();
    await d.stop('theta');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(9_000);
    expect(alive(pidOf(inst.ref))).toBe(false);
  }, 30_000);

  it('is registered by name; an unknown driver lists the known ones', async () => {
    const d = await createDriver('process', { stateDir: join(root, 'reg'), log: pino({ level: 'silent' }) });
    expect(d.name).toBe('process');
    const err = await createDriver('kubernetes', { stateDir: root, log: pino({ level: 'silent' }) }).catch((e) => e);
    expect(isFleetError(err, 'UNKNOWN_COMPONENT')).toBe(true);
    expect(err.message).toBe('unknown driver "kubernetes"; known: process, docker, swarm');
  });
});
