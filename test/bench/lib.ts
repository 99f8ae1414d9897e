// Shared library of the fleet benchmarks (`npm run bench`): generated fleets on the real daemon, real embedded
// Postgres and real git; timing, samples, side-by-side tables and the results JSON.
// Numbers only, no assertions: a figure over its target is printed with ok=false, never hidden.
import { mapLimit } from '../../daemon/core/concurrency.ts';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { stringify } from 'yaml';
import { bootDaemon, type BootOptions, type RunningDaemon } from '../../daemon/boot.ts';
import { createProcessDriver } from '../../daemon/drivers/process.ts';
import { createLogger, type Logger } from '../../daemon/log.ts';
import { checkFleetConfig } from '../../daemon/manifest/fleet-config.ts';
import { REGISTRY_DATABASE } from '../../daemon/postgres/resolve.ts';
import { DEFAULT_FLEET_YAML, createRepo, type TestRepo } from '../harness/git.ts';
import { startPostgres, type TestPostgres } from '../harness/postgres.ts';

export type { TestRepo } from '../harness/git.ts';
export type { TestPostgres } from '../harness/postgres.ts';
export type { RunningDaemon, BootOptions } from '../../daemon/boot.ts';

// ---------------------------------------------------------------------------------------------------------------
// Mode

/** True when --quick was passed (10 and 100 projects only, few repeats). */
export function quick(): boolean {
  return process.argv.includes('--quick');
}

/** The fleet sizes of this run: 10, 100, 1000 (quick: 10, 100). */
export function sizes(): number[] {
  return quick() ? [10, 100] : [10, 100, 1000];
}

/** The largest fleet size of this run (1000; quick: 100). */
export function largest(): number {
  const s = sizes();
  return s[s.length - 1];
}

// ---------------------------------------------------------------------------------------------------------------
// Logging: quiet, but the last warnings are kept for a failure message.

/** A warn-level logger writing nowhere, keeping its last `keep` lines in `lines`. */
export function quietLogger(keep = 50): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(l);
      if (lines.length > keep) lines.splice(0, lines.length - keep);
      cb();
    },
  });
  return { log: createLogger({ level: 'warn', destination: sink }), lines };
}

// ---------------------------------------------------------------------------------------------------------------
// Fleets

export interface BenchFleet {
  repo: TestRepo;
  /** Embedded Postgres, shared (given to generateFleet) or the fleet's own. */
  pg: TestPostgres;
  registryUrl: string;
  stateDir: string;
  ids: string[];
  /** First instance port of this fleet (process driver). */
  portBase: number;
  running: RunningDaemon | null;
  /** The last warn/error log lines of the daemon(s) this fleet booted. */
  logs: string[];
  /** The fleet's quiet logger (warn level, kept in `logs`). */
  log: Logger;
  /** bootDaemon with the fleet's repo/pg/state, process driver, caddyAdmin null unless given, manual: true unless given; quiet logger. */
  boot(extra?: Partial<BootOptions>): Promise<RunningDaemon>;
  /** Stop the daemon; instances keep running. */
  stopDaemon(): Promise<void>;
  /** Stop daemon, stop every instance, drop pg if own (else this fleet's databases and roles), rm temp dirs. */
  destroy(): Promise<void>;
}

/** Fleets not destroyed yet: `destroyAll` tears them down (run.ts calls it at the end and on a signal). */
const live = new Set<BenchFleet>();

/** Other things a benchmark started (child processes, say), stopped by `destroyAll` too. */
const cleanups = new Set<() => Promise<void> | void>();

/** Register a cleanup for `destroyAll` (an interrupted run); call the returned function once done with it. */
export function atCleanup(fn: () => Promise<void> | void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

export async function destroyAll(): Promise<void> {
  for (const fn of [...cleanups]) {
    cleanups.delete(fn);
    await Promise.resolve().then(fn).catch((err: unknown) => console.error(`bench cleanup: ${String(err)}`));
  }
  for (const f of [...live]) await f.destroy().catch((err: unknown) => console.error(`bench cleanup: ${String(err)}`));
}

export const BENCH_SCHEMA = 'export interface Item { id: string; name: string; }\n';

/** The zero-padded id of project `i` (p0000); `prefix` keeps fleets on one shared Postgres apart. */
export function projectId(i: number, n: number, prefix = 'p'): string {
  return `${prefix}${String(i).padStart(Math.max(4, String(Math.max(0, n - 1)).length), '0')}`;
}

/** A minimal valid manifest: unique hostname `<id>.bench.test`, the default stand-in instance. */
export function benchManifest(id: string, state: 'running' | 'stopped', env?: Record<string, string>): string {
  const m: Record<string, unknown> = { id, displayName: id, hostname: `${id}.bench.test`, state };
  if (env && Object.keys(env).length) m.env = env;
  return stringify(m);
}

let portCursor = 20000 + Math.floor(Math.random() * 20) * 1000;

/**
 * A git repo with fleet.yaml and n projects p0000..p(n-1), the first `running` with state: running, the rest
 * state: stopped. One commit. Files written with fs, then one `git add -A && git commit`.
 * With a shared `pg`, pass a distinct `prefix` per fleet alive at the same time (project databases are atomo_<id>).
 */
export async function generateFleet(opts: { n: number; running?: number; pg?: TestPostgres; prefix?: string; env?: Record<string, string> }): Promise<BenchFleet> {
  const { n } = opts;
  const runningCount = Math.min(n, opts.running ?? 0);
  const ids = Array.from({ length: n }, (_, i) => projectId(i, n, opts.prefix));
  const repo = await createRepo();
  let pgc: TestPostgres | null = null;
  let stateDir: string | null = null;
  try {
    repo.write('fleet.yaml', DEFAULT_FLEET_YAML);
    repo.write('README.md', '# bench fleet\n');
    ids.forEach((id, i) => {
      const dir = join(repo.dir, 'projects', id);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'project.yaml'), benchManifest(id, i < runningCount ? 'running' : 'stopped', opts.env));
      writeFileSync(join(dir, 'schema.ts'), BENCH_SCHEMA);
    });
    repo.commit(`bench fleet of ${n}`);
    pgc = opts.pg ?? (await startPostgres());
    const own = !opts.pg;
    // On a shared cluster each fleet has its own registry database.
    const registryName = own ? REGISTRY_DATABASE : `${REGISTRY_DATABASE}_${Math.random().toString(36).slice(2, 10)}`;
    const registryUrl = await pgc.database(registryName);
    stateDir = mkdtempSync(join(tmpdir(), 'fleet-bench-'));
    chmodSync(stateDir, 0o755);
    const { log, lines } = quietLogger();
    const portBase = portCursor;
    portCursor += Math.max(1000, Math.ceil((n + 100) / 1000) * 1000);
    if (portCursor > 60000) portCursor = 20000;
    const pgRef = pgc;
    const dir = stateDir;
    const fleet: BenchFleet = {
      repo, pg: pgRef, registryUrl, stateDir: dir, ids, portBase, running: null, logs: lines, log,
      async boot(extra = {}) {
        if (fleet.running) throw new Error('bench fleet: a daemon is already running; stopDaemon() first');
        const cfg = checkFleetConfig(DEFAULT_FLEET_YAML).config!;
        fleet.running = await bootDaemon({
          log, repoDir: repo.dir, fleet: cfg, stateDir: dir, registryUrl, adminUrl: pgRef.url, httpPort: 0,
          intervalMs: 3_600_000, caddyAdmin: null, manual: true, portBase,
          ...extra,
        });
        return fleet.running;
      },
      async stopDaemon() {
        const r = fleet.running;
        fleet.running = null;
        await r?.stop();
      },
      async destroy() {
        if (!live.has(fleet)) return;
        live.delete(fleet);
        await fleet.stopDaemon().catch(() => {});
        await stopInstances(join(dir, 'instances'), log);
        if (own) await pgRef.destroy();
        else await dropFleetDatabases(pgRef.url, ids, registryName).catch((err: unknown) => console.error(`bench cleanup: ${String(err)}`));
        repo.cleanup();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    live.add(fleet);
    return fleet;
  } catch (err) {
    if (pgc && !opts.pg) await pgc.destroy();
    repo.cleanup();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    throw err;
  }
}

/** Stop every process-driver instance under `instancesDir` (as test/harness/fleet.ts destroy does), 8 at a time. */
export async function stopInstances(instancesDir: string, log: Logger): Promise<void> {
  const driver = createProcessDriver({ stateDir: instancesDir, log });
  const list = await driver.list().catch(() => []);
  await pool(list, 8, (inst) => driver.stop(inst.id).catch(() => {}));
}

/** Drop the project databases and roles (atomo_<id>) and the registry database of a fleet on a shared cluster. */
async function dropFleetDatabases(adminUrl: string, ids: string[], registryName: string): Promise<void> {
  const c = new pg.Client(adminUrl);
  await c.connect();
  try {
    const { rows } = await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY($1)', [[...ids.map((i) => `atomo_${i}`), registryName]]);
    for (const { datname } of rows) await c.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    const roles = await c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname = ANY($1)', [ids.map((i) => `atomo_${i}`)]);
    for (const { rolname } of roles.rows) await c.query(`DROP ROLE IF EXISTS "${rolname}"`);
  } finally {
    await c.end();
  }
}

/** Run `fn` over `items`, at most `width` at a time: the daemon's own bounded concurrency. */
export const pool = mapLimit;

export interface Converged {
  /** Passes run until one was ok, plus the check pass. */
  passes: number;
  /** Milliseconds of the passes until the first ok one (the check pass excluded). */
  ms: number;
  /** What the check pass wrote (rows may be written by status/health updates; no event may be added). */
  check: RegistryWrites;
}

/**
 * Pass until `daemon.pass()` returns ok, then one more pass that must plan nothing: ok and no event added (every
 * action is an event; rows the check pass rewrote anyway, a health timestamp say, are returned in `check`).
 * Throws (with the last error and log lines) when that does not happen within `maxPasses`.
 */
export async function converge(fleet: BenchFleet, maxPasses = 8): Promise<Converged> {
  const daemon = fleet.running?.daemon;
  if (!daemon) throw new Error('converge: boot the daemon first');
  let ms = 0;
  let passes = 0;
  let last = '';
  while (passes < maxPasses) {
    const t0 = performance.now();
    const r = await daemon.pass();
    ms += performance.now() - t0;
    passes += 1;
    if (!r.ok) {
      last = r.error ?? 'not ok';
      continue;
    }
    const writes = await registryWrites(fleet.registryUrl);
    const check = await daemon.pass();
    passes += 1;
    const w = await writes();
    if (check.ok && w.eventsAdded === 0) return { passes, ms, check: w };
    last = `pass after an ok pass still changed things: ${w.eventsAdded} events, rows ${w.rowsWritten.slice(0, 5).join(', ')}${check.ok ? '' : `; ${check.error}`}`;
  }
  throw new Error(`fleet of ${fleet.ids.length} did not converge in ${maxPasses} passes: ${last}\n${fleet.logs.slice(-5).join('\n')}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Registry writes

export interface RegistryWrites {
  /** Rows of `projects` whose xmin changed (written), appeared, or disappeared. */
  projectRowsWritten: number;
  eventsAdded: number;
  /** Transaction ids handed out cluster-wide meanwhile (read-only transactions consume none). */
  writeTransactions: number;
  /** Ids of the rows written (`-id` for a row gone). */
  rowsWritten: string[];
}

interface RegistrySnapshot { rows: Map<string, string>; lastEvent: string; nextXid: bigint }

async function registrySnapshot(c: pg.Client): Promise<RegistrySnapshot> {
  // One statement per figure; all read-only, so they take no transaction id of their own.
  const { rows: [t] } = await c.query<{ p: string | null; e: string | null }>(`SELECT to_regclass('projects')::text AS p, to_regclass('project_events')::text AS e`);
  const rows = new Map<string, string>();
  if (t.p) for (const r of (await c.query<{ id: string; x: string }>('SELECT id, xmin::text AS x FROM projects')).rows) rows.set(r.id, r.x);
  const lastEvent = t.e ? (await c.query<{ m: string }>('SELECT coalesce(max(id), 0)::text AS m FROM project_events')).rows[0].m : '0';
  const nextXid = BigInt((await c.query<{ x: string }>('SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x')).rows[0].x);
  return { rows, lastEvent, nextXid };
}

/** Count registry writes between two calls: the returned function reports what was written since. */
export async function registryWrites(registryUrl: string): Promise<() => Promise<RegistryWrites>> {
  const c = new pg.Client(registryUrl);
  await c.connect();
  let before: RegistrySnapshot;
  try {
    before = await registrySnapshot(c);
  } catch (err) {
    await c.end().catch(() => {});
    throw err;
  }
  return async () => {
    try {
      const after = await registrySnapshot(c);
      const written: string[] = [];
      for (const [id, x] of after.rows) if (before.rows.get(id) !== x) written.push(id);
      for (const id of before.rows.keys()) if (!after.rows.has(id)) written.push(`-${id}`);
      const events = await c.query<{ n: string }>(
        `SELECT CASE WHEN to_regclass('project_events') IS NULL THEN 0 ELSE (SELECT count(*) FROM project_events WHERE id > $1::bigint) END::text AS n`,
        [before.lastEvent],
      );
      return {
        projectRowsWritten: written.length, eventsAdded: Number(events.rows[0].n),
        writeTransactions: Number(after.nextXid - before.nextXid), rowsWritten: written.sort(),
      };
    } finally {
      await c.end().catch(() => {});
    }
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Timing

export interface Sample { min: number; median: number; repeats: number }

export function sample(values: number[]): Sample {
  if (values.length === 0) return { min: NaN, median: NaN, repeats: 0 };
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { min: s[0], median, repeats: s.length };
}

/** Run fn `repeats` times (after `warmup` untimed runs) and return its timings in ms. */
export async function time(fn: () => Promise<unknown>, opts: { repeats: number; warmup?: number }): Promise<number[]> {
  for (let i = 0; i < (opts.warmup ?? 0); i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < opts.repeats; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

/** Milliseconds of one call. */
export async function timeOnce<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

/** A target like "≤ 2×" or "≤ 100 ms": whether `value` meets it (undefined when the text is not of that form). */
export function meets(target: string | undefined, value: number): boolean | undefined {
  const m = target && /^\s*(≤|<=|<|≥|>=|>|=)\s*([\d.]+)/.exec(target);
  if (!m || !Number.isFinite(value)) return undefined;
  const t = Number(m[2]);
  switch (m[1]) {
    case '≤': case '<=': return value <= t;
    case '<': return value < t;
    case '≥': case '>=': return value >= t;
    case '>': return value > t;
    default: return value === t;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Reports

export interface Row { fleet: string; measured: string; m: Sample; reference: string; r: Sample; ratio: number; target?: string; ok?: boolean; note?: string }
export interface Table { figure: string; title: string; rows: Row[] }
export interface ValueRow { name: string; value: number | string; unit?: string; target?: string; ok?: boolean }
export interface ValueTable { figure: string; title: string; values: ValueRow[] }

const tables: (Table | ValueTable)[] = [];

/** Every table reported so far in this run (for the results JSON). */
export function reported(): (Table | ValueTable)[] {
  return tables;
}

/** A row with its ratio (median ÷ median) and ok computed from the target. */
export function ratioRow(fleet: string, measured: string, m: number[] | Sample, reference: string, r: number[] | Sample, target?: string, note?: string): Row {
  const ms = Array.isArray(m) ? sample(m) : m;
  const rs = Array.isArray(r) ? sample(r) : r;
  const ratio = ms.median / rs.median;
  return { fleet, measured, m: ms, reference, r: rs, ratio, target, ok: meets(target, ratio), note };
}

const fmtMs = (n: number) => (!Number.isFinite(n) ? '-' : n >= 100 ? n.toFixed(0) : n.toFixed(1));
/** min / median, in seconds from 10 s up. */
const pair = (s: Sample) => (s.median >= 10_000
  ? `${(s.min / 1000).toFixed(1)} / ${(s.median / 1000).toFixed(1)} s`
  : `${fmtMs(s.min)} / ${fmtMs(s.median)} ms`);
const okText = (ok: boolean | undefined) => (ok === undefined ? '' : ok ? 'ok' : 'NO');

function printGrid(header: string[], rows: string[][], right: boolean[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ').trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('-+-'));
  for (const r of rows) console.log(line(r));
}

/** Print a table (fleet | measured min/median | reference min/median | ratio | target | ok | repeats) and remember it. */
export function report(t: Table): void {
  tables.push(t);
  console.log(`\n[${t.figure}] ${t.title}`);
  const rows = t.rows.map((r) => [
    r.fleet, `${r.measured}: ${pair(r.m)}`, `${r.reference}: ${pair(r.r)}`, Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}×` : '-',
    r.target ?? '', okText(r.ok), r.m.repeats === r.r.repeats ? String(r.m.repeats) : `${r.m.repeats}/${r.r.repeats}`,
  ]);
  printGrid(['fleet', 'measured min / median', 'reference min / median', 'ratio', 'target', 'ok', 'repeats'], rows, [false, false, false, true, false, false, true]);
  for (const r of t.rows) if (r.note) console.log(`  ${r.fleet}: ${r.note}`);
}

/** Non-ratio figures (counts, MiB, %): printed as a plain key/value table and saved. */
export function reportValues(figure: string, title: string, rows: ValueRow[]): void {
  tables.push({ figure, title, values: rows });
  console.log(`\n[${figure}] ${title}`);
  const cells = rows.map((r) => [
    r.name, typeof r.value === 'number' ? (Number.isInteger(r.value) ? String(r.value) : r.value.toFixed(1)) : r.value, r.unit ?? '', r.target ?? '', okText(r.ok),
  ]);
  printGrid(['name', 'value', 'unit', 'target', 'ok'], cells, [false, true, false, false, false]);
}

export interface Results {
  at: string;
  quick: boolean;
  node: string;
  cpus: number;
  benches: string[];
  tables: (Table | ValueTable)[];
}

/** Write bench/results/<ISO time>.json under `root`; returns its path. */
export function writeResults(root: string, benches: string[], cpus: number): string {
  const at = new Date().toISOString();
  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${at.replace(/:/g, '-')}.json`);
  const results: Results = { at, quick: quick(), node: process.version, cpus, benches, tables };
  writeFileSync(path, JSON.stringify(results, null, 2) + '\n');
  return path;
}

// ---------------------------------------------------------------------------------------------------------------
// psql

/**
 * Run a SQL script through ONE `psql` session (`-v ON_ERROR_STOP=1 -q -f`), as the floor of provisioning.
 * Asynchronous on purpose: the embedded cluster logs into a pipe this process drains; a synchronous child would
 * stop the draining, and a full pipe blocks Postgres's checkpointer (DROP DATABASE waits for a checkpoint).
 */
export async function psqlScript(url: string, sql: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-bench-sql-'));
  try {
    const file = join(dir, 'script.sql');
    writeFileSync(file, sql);
    await new Promise<void>((resolveRun, reject) => {
      execFile('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-q', '-f', file, url], { maxBuffer: 16 * 1024 * 1024 }, (err, _out, stderr) => {
        if (err) reject(new Error(`psql failed: ${String(stderr).trim() || err.message}`));
        else resolveRun();
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
