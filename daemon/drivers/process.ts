// The process driver: one detached OS process per project on a loopback port, found again through pid files in
// stateDir. Instances outlive the daemon by design; a restarted daemon re-adopts them from the pid files.
// A changed spec is replaced the Kamal way: the new process starts next to the old one on a fresh port, becomes the
// current instance only once it answers `ready`, and the old one keeps serving ("retiring") until `retire` sees that
// nothing routes to it any more. Restarts and backoff belong to the daemon's reconciler.
import { spawn } from 'node:child_process';
import { accessSync, constants, closeSync, existsSync, readFileSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { freshPort, portFree } from '../ports.ts';
import { constants as osConstants } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Driver, DriverLayout, Instance, InstanceSpec } from '../core/types.ts';
import { openPrivateAppend, privateDir } from '../files.ts';
import { FleetError, describe } from '../core/errors.ts';
import { tailFile } from './log-file.ts';

export interface ProcessDriverOptions {
  /** Folder of `<id>.json` pid files. */
  stateDir: string;
  log: Logger;
  /** The stand-in script used when neither spec.command nor `atomo-server` on PATH exists. */
  standinPath?: string;
  /** Bound on a replacement answering `ready` before it is stopped and the running instance kept. Default 60 s. */
  readyTimeoutMs?: number;
  /** How long a replaced instance serves on after the switch, for requests already on their way. Default 2 s. */
  drainMs?: number;
  /**
   * The folder holding a project's `instance.log` (InstanceSpec.logDir), for `logs`. Default: the daemon's layout,
   * `<state>/projects/<id>/logs` beside this driver's `<state>/instances` (provision/project.ts logDirOf).
   */
  logDirOf?: (id: string) => string;
}

/** One instance process. */
export interface PidEntry {
  pid: number;
  specHash: string;
  commit: string;
  port: number;
  startedAt: string;
}

/** What `${stateDir}/<id>.json` holds: the current instance (all `list()` reports), and those around a replacement. */
export interface PidFile extends PidEntry {
  /** Instances a replacement took over from: they serve on until nothing routes to them (`retire`). */
  retiring?: (PidEntry & { since: string })[];
  /** A replacement not ready yet. Found outside a start, it was left by a daemon that died meanwhile: stopped. */
  starting?: PidEntry;
}

const STOP_TIMEOUT_MS = 10_000;
const POLL_MS = 50;
const DEFAULT_STANDIN = fileURLToPath(new URL('../dev/standin.mjs', import.meta.url));
const HAS_PROC = existsSync('/proc/self/environ');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An executable named `name` in one of PATH's folders, or null. */
export function findOnPath(name: string, pathVar = process.env.PATH ?? ''): string | null {
  for (const dir of pathVar.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * The child's environment: the spec's env plus PATH/HOME from the daemon and nothing else of the daemon's
 * (its own secrets must not leak). PORT and ATOMO_PROJECT_ID always match the spec: the upstream address and the
 * pid-reuse check rely on them.
 */
/** Processes share the host: each gets its own loopback port and reads schema.ts where the daemon writes it. */
export const PROCESS_LAYOUT: DriverLayout = Object.freeze({ name: 'process', host: '127.0.0.1', hostPorts: true, schemaMount: null });

export function renderProcessEnv(spec: InstanceSpec, daemonEnv: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const base: Record<string, string> = {};
  if (daemonEnv.PATH) base.PATH = daemonEnv.PATH;
  if (daemonEnv.HOME) base.HOME = daemonEnv.HOME;
  return {
    ...base,
    HOST: '127.0.0.1',
    ATOMO_SCHEMA_PATH: spec.schemaPath,
    ...spec.env,
    PORT: String(spec.port),
    ATOMO_PROJECT_ID: spec.id,
  };
}

/** How long a pid proven to be an instance is trusted before its /proc environment is read again. */
const VERIFY_MS = 30_000;

/** Whether `pid` is alive and really the instance for `id` (pid files can outlive their process; pids get reused). */
function isInstanceProcess(pid: number, id: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (!HAS_PROC) return true; // not Linux: the signal check is all we have
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`ATOMO_PROJECT_ID=${id}`);
  } catch {
    return false; // gone meanwhile, or another user's process: not ours either way
  }
}

/** The process group of `pid` (field 5 of /proc/<pid>/stat, after the parenthesised command), or null. */
function groupOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return null;
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // already gone
  }
}


/** The stable port when nothing of ours (or anyone's) holds it, else a fresh one the system hands out. */
async function pickPort(stable: number, taken: number[]): Promise<number> {
  return !taken.includes(stable) && (await portFree(stable)) ? stable : freshPort();
}

function withRetiring(file: PidFile, retiring: NonNullable<PidFile['retiring']>): PidFile {
  const { retiring: _, ...rest } = file;
  return retiring.length ? { ...rest, retiring } : rest;
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!groupAlive(pid)) return true;
    await sleep(POLL_MS);
  }
  return !groupAlive(pid);
}

/** A signal death reads like a shell exit code (SIGKILL → 137), as the docker driver reports it. */
function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number | null {
  if (code !== null) return code;
  return signal ? 128 + (osConstants.signals[signal] ?? 0) : null;
}

export function createProcessDriver(opts: ProcessDriverOptions): Driver {
  const { stateDir, log } = opts;
  const standinPath = opts.standinPath ?? DEFAULT_STANDIN;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  const drainMs = opts.drainMs ?? 2_000;
  const exitCodes = new Map<string, number | null>();
  const listeners: Array<(id: string, code: number | null) => void> = [];
  /** Pids this driver is stopping on purpose: their exit is not news for the reconciler. */
  const stopping = new Set<number>();
  /** Current instances being replaced: an exit meanwhile is held back, and reported only if the replacement fails. */
  const replacing = new Map<string, { pid: number; exit?: number | null }>();
  /** Projects already searched for orphans: only an earlier daemon can have left one (this one records its own). */
  const orphansChecked = new Set<string>();
  /** One start/stop/retire at a time per id, so two calls never spawn two processes on one port. */
  const locks = new Map<string, Promise<unknown>>();
  /** Pids already proven to be an id's instance, and when: /proc is read again only after VERIFY_MS (pid reuse). */
  const verified = new Map<number, { id: string; at: number }>();
  /** Ids whose pid file holds a retiring or starting entry: what `retire` has to look at (null: not scanned yet). */
  let pending: Set<string> | null = null;
  let warnedStandin = false;
  let closed = false;
  privateDir(stateDir);

  const pidPath = (id: string) => join(stateDir, `${id}.json`);

  function serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = locks.get(id) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    locks.set(id, next);
    return next;
  }

  function pidFileIds(): string[] {
    try {
      return readdirSync(stateDir).filter((n) => n.endsWith('.json')).sort().map((n) => n.slice(0, -'.json'.length));
    } catch {
      return [];
    }
  }

  function readPidFile(id: string): PidFile | null {
    try {
      return JSON.parse(readFileSync(pidPath(id), 'utf8')) as PidFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ project: id, err }, 'unreadable pid file ignored');
      return null;
    }
  }

  /** Alive and this id's instance: a signal check each time, the /proc environment only now and then. */
  function isOurs(pid: number, id: string): boolean {
    const known = verified.get(pid);
    if (known?.id === id && Date.now() - known.at < VERIFY_MS) {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        verified.delete(pid);
        return false;
      }
    }
    const ours = isInstanceProcess(pid, id);
    if (ours) verified.set(pid, { id, at: Date.now() });
    else verified.delete(pid);
    return ours;
  }

  function writePidFile(id: string, data: PidFile): void {
    if (data.retiring?.length || data.starting) pending?.add(id);
    const tmp = `${pidPath(id)}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(data) + '\n', { mode: 0o600 });
    renameSync(tmp, pidPath(id));
  }

  function toInstance(id: string, file: PidEntry): Instance {
    const running = isOurs(file.pid, id);
    return {
      id,
      running,
      upstream: `127.0.0.1:${file.port}`,
      specHash: file.specHash,
      commit: file.commit,
      exitCode: running ? undefined : exitCodes.get(id),
      ref: `pid:${file.pid}`,
    };
  }

  function commandFor(spec: InstanceSpec): string[] {
    if (spec.command && spec.command.length > 0) return spec.command;
    const server = findOnPath('atomo-server');
    if (server) return [server];
    if (!warnedStandin) {
      warnedStandin = true;
      log.warn({ standinPath }, 'atomo-server is not on PATH: running the STAND-IN instance (for tests and local runs only)');
    }
    return [process.execPath, standinPath];
  }

  function reportExit(id: string, commit: string, pid: number, exitCode: number | null): void {
    exitCodes.set(id, exitCode);
    log.info({ project: id, commit, pid, exitCode }, 'instance exited');
    for (const listener of listeners) listener(id, exitCode);
  }

  /** Spawn the process for `spec` on `spec.port`; `exited` settles with its exit code. */
  function spawnChild(spec: InstanceSpec): { entry: PidEntry; exited: Promise<number | null> } {
    const [cmd, ...args] = commandFor(spec);
    privateDir(spec.logDir);
    // A file descriptor, not a pipe: the child keeps writing its log after the daemon dies.
    const logFd = openPrivateAppend(join(spec.logDir, 'instance.log'));
    let child;
    try {
      child = spawn(cmd, args, { env: renderProcessEnv(spec), cwd: spec.logDir, detached: true, stdio: ['ignore', logFd, logFd] });
    } finally {
      closeSync(logFd);
    }
    child.on('error', (err) => log.error({ project: spec.id, commit: spec.commit, err }, 'instance process error'));
    const pid = child.pid;
    if (pid === undefined) {
      throw new FleetError('DRIVER', `cannot start ${cmd} for project ${spec.id} (not found or not executable); check runtime.command in the manifest`, { project: spec.id });
    }
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => {
      const exitCode = exitCodeOf(code, signal);
      resolve(exitCode);
      verified.delete(pid);
      if (stopping.delete(pid) || closed) return;
      const held = replacing.get(spec.id);
      if (held?.pid === pid) held.exit = exitCode;
      // Only the current instance's exit is news: a retiring or never-ready one is the driver's own business.
      else if (readPidFile(spec.id)?.pid === pid) reportExit(spec.id, spec.commit, pid, exitCode);
    }));
    child.unref();
    // No log line here: the caller writes the pid file first, so a daemon killed now leaves the least behind.
    return { entry: { pid, specHash: spec.specHash, commit: spec.commit, port: spec.port, startedAt: new Date().toISOString() }, exited };
  }

  async function stopProcess(id: string, e: PidEntry): Promise<void> {
    if (!isInstanceProcess(e.pid, id)) return;
    stopping.add(e.pid);
    try {
      signalGroup(e.pid, 'SIGTERM');
      if (!(await waitGone(e.pid, STOP_TIMEOUT_MS))) {
        log.warn({ project: id, commit: e.commit, pid: e.pid }, 'instance ignored SIGTERM for 10 s: sending SIGKILL');
        signalGroup(e.pid, 'SIGKILL');
        await waitGone(e.pid, 2_000);
      }
    } finally {
      // Our own child's exit event has fired by now (it is reaped before the group is gone).
      stopping.delete(e.pid);
    }
    log.info({ project: id, commit: e.commit, pid: e.pid }, 'instance stopped');
  }

  /** The pid file without what no longer runs: an interrupted start is stopped, gone retiring entries dropped. */
  async function settle(id: string): Promise<PidFile | null> {
    const file = readPidFile(id);
    if (!file) return null;
    const { starting, ...rest } = file;
    // Under the lock no start of ours is in flight: a `starting` entry was left by a daemon that died meanwhile.
    if (starting) {
      log.warn({ project: id, commit: starting.commit, pid: starting.pid }, 'stopping a replacement whose start was interrupted');
      await stopProcess(id, starting);
    }
    const retiring = file.retiring ?? [];
    const live = retiring.filter((r) => isInstanceProcess(r.pid, id));
    const next = withRetiring(rest, live);
    if (starting || live.length !== retiring.length) writePidFile(id, next);
    return next;
  }

  /** Wait for `ready`; the reason it never came, or null. */
  async function waitReady(upstream: string, exited: Promise<number | null>, ready: (u: string) => Promise<boolean>): Promise<string | null> {
    const exit: { done: boolean; code?: number | null } = { done: false };
    void exited.then((code) => Object.assign(exit, { done: true, code }));
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline) {
      if (exit.done) return `it exited with code ${exit.code}`;
      if (await ready(upstream).catch(() => false)) return null;
      await sleep(100);
    }
    return exit.done ? `it exited with code ${exit.code}` : `it did not answer /ready within ${readyTimeoutMs / 1000} s`;
  }

  /** Start `spec` next to the running `current`; it becomes current only once ready, and `current` retires. */
  async function replace(spec: InstanceSpec, current: PidFile, ready?: (u: string) => Promise<boolean>): Promise<Instance> {
    const { id } = spec;
    const port = await pickPort(spec.port, [current.port, ...(current.retiring ?? []).map((r) => r.port)]);
    const kept = `the running instance (commit ${current.commit.slice(0, 7)}, 127.0.0.1:${current.port}) keeps serving`;
    log.info({ project: id, commit: spec.commit, from: current.specHash, to: spec.specHash, port }, 'spec changed: starting the replacement next to the running instance');
    // A replacement a killed daemon spawned but never recorded would run beside this one forever.
    await stopOrphans(spec, current);
    const held: { pid: number; exit?: number | null } = { pid: current.pid };
    replacing.set(id, held);
    try {
      let child;
      try {
        child = spawnChild({ ...spec, port });
      } catch (err) {
        throw new FleetError('DRIVER', `${describe(err)}; ${kept}`, { project: id, cause: err });
      }
      writePidFile(id, { ...current, starting: child.entry });
      log.info({ project: id, pid: child.entry.pid, port, commit: spec.commit }, 'instance started');
      const failure = ready ? await waitReady(`127.0.0.1:${port}`, child.exited, ready) : null;
      if (failure) {
        await stopProcess(id, child.entry);
        writePidFile(id, current);
        throw new FleetError('DRIVER', `the replacement for project ${id} (commit ${spec.commit.slice(0, 7)}) did not become ready: ${failure}; ${kept}; see ${join(spec.logDir, 'instance.log')}`, { project: id });
      }
      const { retiring = [], starting: _, ...old } = current;
      const next: PidFile = { ...child.entry, retiring: [...retiring, { ...old, since: new Date().toISOString() }] };
      writePidFile(id, next);
      exitCodes.delete(id);
      log.info({ project: id, commit: spec.commit, pid: child.entry.pid, retiring: current.pid }, 'replacement ready: the previous instance retires once nothing routes to it');
      return toInstance(id, next);
    } catch (err) {
      // The old one stays the current instance: an exit it had meanwhile is news after all.
      if (held.exit !== undefined) reportExit(id, current.commit, current.pid, held.exit);
      throw err;
    } finally {
      replacing.delete(id);
    }
  }

  /**
   * Stop this project's instance processes no pid file entry names: found by their working directory (the
   * project's log folder under this fleet's state dir, so another fleet's instance of the same id is never one)
   * and their ATOMO_PROJECT_ID. One scan of /proc per project and driver lifetime, at its first start or replace.
   */
  async function stopOrphans(spec: InstanceSpec, file: PidFile | null): Promise<void> {
    if (!HAS_PROC || orphansChecked.has(spec.id)) return;
    orphansChecked.add(spec.id);
    const named = new Set([file, file?.starting, ...(file?.retiring ?? [])].filter((e): e is PidEntry => !!e).map((e) => e.pid));
    let dir: string;
    try {
      dir = realpathSync(spec.logDir);
    } catch {
      return; // no log folder yet: nothing ever ran for it here
    }
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || named.has(pid) || pid === process.pid) continue;
      let cwd: string;
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        continue; // gone, or not ours to read
      }
      // Instances are spawned detached, each the leader of its own process group; what an instance starts itself
      // (a compiler service, say) shares its folder and group but is the instance's own business.
      if (cwd !== dir || groupOf(pid) !== pid || !isInstanceProcess(pid, spec.id)) continue;
      log.warn({ project: spec.id, pid }, 'stopping an instance no pid file names (left by a daemon killed while starting it)');
      await stopProcess(spec.id, { pid, specHash: '', commit: spec.commit, port: 0, startedAt: '' });
    }
  }

  async function retireLocked(id: string, routed: ReadonlySet<string>): Promise<void> {
    const file = await settle(id);
    if (!file?.retiring) return;
    const keep: NonNullable<PidFile['retiring']> = [];
    for (const r of file.retiring) {
      // Still routed (the gateway has not switched), or requests sent just before the switch may still arrive.
      if (routed.has(`127.0.0.1:${r.port}`) || Date.now() - Date.parse(r.since) < drainMs) keep.push(r);
      else await stopProcess(id, r);
    }
    if (keep.length !== file.retiring.length) writePidFile(id, withRetiring(file, keep));
  }

  async function stopLocked(id: string): Promise<void> {
    const file = readPidFile(id);
    if (file) {
      for (const e of [file.starting, ...(file.retiring ?? []), file]) if (e) await stopProcess(id, e);
    }
    rmSync(pidPath(id), { force: true });
  }

  return {
    name: 'process',

    async list() {
      const out: Instance[] = [];
      for (const id of pidFileIds()) {
        const file = readPidFile(id);
        if (file) out.push(toInstance(id, file));
      }
      return out;
    },

    start(spec, startOpts = {}) {
      return serial(spec.id, async () => {
        const file = await settle(spec.id);
        if (file && isInstanceProcess(file.pid, spec.id)) {
          if (file.specHash === spec.specHash) return toInstance(spec.id, file);
          return replace(spec, file, startOpts.ready);
        }
        // Nothing serves that a pid file names. A daemon killed between spawn and pid file may have left one
        // that none names: it goes first, so a project never runs twice.
        await stopOrphans(spec, file);
        // Start on the stable port, unless something (a retiring instance, say) holds it.
        const retiring = file?.retiring ?? [];
        const port = await pickPort(spec.port, retiring.map((r) => r.port));
        const { entry } = spawnChild({ ...spec, port });
        exitCodes.delete(spec.id);
        const next = withRetiring(entry, retiring);
        writePidFile(spec.id, next);
        log.info({ project: spec.id, pid: entry.pid, port, commit: spec.commit }, 'instance started');
        return toInstance(spec.id, next);
      });
    },

    async retire(routed) {
      // The first call looks at every pid file (an earlier run may have left retiring instances); later calls only
      // at those this driver gave a retiring or starting entry since.
      pending ??= new Set(pidFileIds());
      for (const id of [...pending].sort()) {
        await serial(id, () => retireLocked(id, routed));
        const file = readPidFile(id);
        if (!file?.retiring?.length && !file?.starting) pending.delete(id);
      }
    },

    stop(id) {
      return serial(id, () => stopLocked(id));
    },

    onExit(listener) {
      listeners.push(listener);
    },

    logs(id, logOpts) {
      // The id names a folder: anything but a project id (a path, say) has no log.
      if (!/^[a-z][a-z0-9_]{0,39}$/.test(id)) return (async function* () {})();
      const dir = opts.logDirOf ? opts.logDirOf(id) : join(dirname(stateDir), 'projects', id, 'logs');
      return tailFile(join(dir, 'instance.log'), logOpts);
    },

    async close() {
      closed = true;
      listeners.length = 0;
    },
  };
}
