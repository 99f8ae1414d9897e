// The process driver: one detached OS process per project on a stable loopback port, found again through pid
// files in stateDir. Instances outlive the daemon by design; a restarted daemon re-adopts them from the pid files.
// Restarts and backoff belong to the daemon's reconciler: this driver only starts, stops, lists and reports exits.
import { spawn } from 'node:child_process';
import { accessSync, constants, closeSync, existsSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Driver, Instance, InstanceSpec } from '../types.ts';
import { openPrivateAppend, privateDir } from '../files.ts';
import { FleetError } from '../errors.ts';

export interface ProcessDriverOptions {
  /** Folder of `<id>.json` pid files. */
  stateDir: string;
  log: Logger;
  /** The stand-in script used when neither spec.command nor `atomo-server` on PATH exists. */
  standinPath?: string;
}

/** What `${stateDir}/<id>.json` holds. */
export interface PidFile {
  pid: number;
  specHash: string;
  commit: string;
  port: number;
  startedAt: string;
}

const STOP_TIMEOUT_MS = 10_000;
const POLL_MS = 50;
const DEFAULT_STANDIN = fileURLToPath(new URL('../standin/instance.mjs', import.meta.url));
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
  const exitCodes = new Map<string, number | null>();
  const listeners: Array<(id: string, code: number | null) => void> = [];
  /** Pids this driver is stopping on purpose: their exit is not news for the reconciler. */
  const stopping = new Set<number>();
  /** One start/stop at a time per id, so two calls never spawn two processes on one port. */
  const locks = new Map<string, Promise<unknown>>();
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

  function readPidFile(id: string): PidFile | null {
    try {
      return JSON.parse(readFileSync(pidPath(id), 'utf8')) as PidFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ project: id, err }, 'unreadable pid file ignored');
      return null;
    }
  }

  function writePidFile(id: string, data: PidFile): void {
    const tmp = `${pidPath(id)}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(data) + '\n', { mode: 0o600 });
    renameSync(tmp, pidPath(id));
  }

  function toInstance(id: string, file: PidFile): Instance {
    const running = isInstanceProcess(file.pid, id);
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

  function spawnInstance(spec: InstanceSpec): Instance {
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
    const pid = child.pid;
    if (pid === undefined) {
      throw new FleetError('DRIVER', `cannot start ${cmd} for project ${spec.id}; check runtime.command in the manifest`, { project: spec.id });
    }
    child.on('error', (err) => log.error({ project: spec.id, err }, 'instance process error'));
    child.on('exit', (code, signal) => {
      const exitCode = exitCodeOf(code, signal);
      if (stopping.delete(pid) || closed) return;
      exitCodes.set(spec.id, exitCode);
      log.info({ project: spec.id, commit: spec.commit, pid, exitCode }, 'instance exited');
      for (const listener of listeners) listener(spec.id, exitCode);
    });
    child.unref();
    exitCodes.delete(spec.id);
    const file: PidFile = { pid, specHash: spec.specHash, commit: spec.commit, port: spec.port, startedAt: new Date().toISOString() };
    writePidFile(spec.id, file);
    log.info({ project: spec.id, pid, port: spec.port, commit: spec.commit }, 'instance started');
    return toInstance(spec.id, file);
  }

  async function stopLocked(id: string): Promise<void> {
    const file = readPidFile(id);
    if (file && isInstanceProcess(file.pid, id)) {
      stopping.add(file.pid);
      try {
        signalGroup(file.pid, 'SIGTERM');
        if (!(await waitGone(file.pid, STOP_TIMEOUT_MS))) {
          log.warn({ project: id, commit: file.commit, pid: file.pid }, 'instance ignored SIGTERM for 10 s: sending SIGKILL');
          signalGroup(file.pid, 'SIGKILL');
          await waitGone(file.pid, 2_000);
        }
      } finally {
        // Our own child's exit event has fired by now (it is reaped before the group is gone).
        stopping.delete(file.pid);
      }
      log.info({ project: id, commit: file.commit, pid: file.pid }, 'instance stopped');
    }
    rmSync(pidPath(id), { force: true });
  }

  return {
    name: 'process',

    async list() {
      let names: string[];
      try {
        names = readdirSync(stateDir);
      } catch {
        return [];
      }
      const out: Instance[] = [];
      for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
        const id = name.slice(0, -'.json'.length);
        const file = readPidFile(id);
        if (file) out.push(toInstance(id, file));
      }
      return out;
    },

    // `opts.ready` is not used: two instances cannot share the project's stable port, so a replacement is
    // stop-then-start (a short gap), unlike the docker driver.
    start(spec) {
      return serial(spec.id, async () => {
        const file = readPidFile(spec.id);
        if (file && isInstanceProcess(file.pid, spec.id)) {
          if (file.specHash === spec.specHash) return toInstance(spec.id, file);
          log.info({ project: spec.id, commit: spec.commit, from: file.specHash, to: spec.specHash }, 'spec changed: replacing instance');
          await stopLocked(spec.id);
        }
        return spawnInstance(spec);
      });
    },

    stop(id) {
      return serial(id, () => stopLocked(id));
    },

    onExit(listener) {
      listeners.push(listener);
    },

    async close() {
      closed = true;
      listeners.length = 0;
    },
  };
}
