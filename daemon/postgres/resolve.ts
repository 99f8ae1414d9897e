// Where the registry and the project databases live: a URL given at start, a reference in the secret store
// (fleet.yaml postgres.admin), or the embedded Postgres of a laptop run (data under <state>/pg, git-ignored).
import pg from 'pg';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { readEnv, type FleetEnv } from '../config/env.ts';
import { FleetError } from '../core/errors.ts';
import { loadFleetConfig } from '../manifest/fleet-config.ts';
import { generatePassword } from '../secrets/generate.ts';
import type { SecretStore, FleetConfig } from '../core/types.ts';
import { startEmbedded } from './embedded.ts';

export interface Databases {
  registryUrl: string;
  adminUrl: string;
}

/** The control plane's database: outside the `atomo_<id>` namespace, so no project id can ever name it. */
export const REGISTRY_DATABASE = 'fleet_registry';
/** Its name before: a project with id `fleet` mapped onto it. Renamed at start when possible. */
export const LEGACY_REGISTRY_DATABASE = 'atomo_fleet';
/** What clusters initialised before the password file existed were given. */
const OLD_DEFAULT_PASSWORD = 'postgres';

export async function resolveDatabases(o: {
  fleet: FleetConfig; secrets: SecretStore; stateDir: string; log: Logger; registry?: string; admin?: string;
  /** The embedded cluster's port (FleetEnv.pgPort); callers without a FleetEnv of their own read the environment. */
  pgPort?: number;
}): Promise<Databases> {
  let adminUrl = o.admin;
  if (!adminUrl && o.fleet.postgres.admin === 'embedded') {
    adminUrl = await startEmbeddedCluster(o.stateDir, o.pgPort ?? readEnv().pgPort, o.log);
  } else if (!adminUrl) {
    adminUrl = await o.secrets.get(o.fleet.postgres.admin);
  }
  if (o.registry) return { registryUrl: o.registry, adminUrl };
  return { registryUrl: withDatabase(adminUrl, await ensureRegistryDatabase(adminUrl, o.log)), adminUrl };
}

/** The state dir: --state-dir, else FLEET_STATE_DIR, else `<repo>/.fleet`. */
export function stateDirFor(repoDir: string, env: FleetEnv, flag?: string): string {
  return resolve(flag ?? env.stateDir ?? join(repoDir, '.fleet'));
}

/**
 * The registry a CLI command talks to: --registry, else FLEET_REGISTRY_URL, else the embedded one of a laptop run
 * (fleet.yaml `postgres.admin: embedded`, found through the state dir), else a usage error saying what to pass.
 */
export async function registryUrlFor(
  repoDir: string, flag: string | undefined, env: FleetEnv, o: { stateDir?: string; fleet?: FleetConfig } = {},
): Promise<string> {
  if (flag) return flag;
  if (env.registryUrl) return env.registryUrl;
  const file = join(resolve(repoDir), 'fleet.yaml');
  const fleet = o.fleet ?? (existsSync(file) ? await loadFleetConfig(file, { repoDir: resolve(repoDir) }) : null);
  if (fleet?.postgres.admin === 'embedded') return embeddedRegistryUrl(o.stateDir ?? stateDirFor(repoDir, env), env.pgPort);
  throw new FleetError('USAGE', 'where is the registry? pass --registry URL or set FLEET_REGISTRY_URL (only fleet.yaml postgres.admin: embedded has a default)');
}

/** The file holding the embedded cluster's superuser password (mode 0600). */
export function superuserPasswordFile(stateDir: string): string {
  return join(stateDir, 'pg-superuser-password');
}

/** The registry URL a laptop run uses, without starting anything (for `fleet status`, `fleet plan`). */
export async function embeddedRegistryUrl(stateDir: string, pgPort = readEnv().pgPort): Promise<string> {
  const file = superuserPasswordFile(stateDir);
  // No file: a cluster no daemon of this version has started yet still has the old default.
  const adminUrl = embeddedAdminUrl(existsSync(file) ? readPassword(file) : OLD_DEFAULT_PASSWORD, pgPort);
  return withDatabase(adminUrl, await registryDatabaseOn(adminUrl));
}

function embeddedAdminUrl(password: string, port: number): string {
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/**
 * Start (or adopt) the embedded cluster with the superuser password kept in the state dir: random for a new
 * cluster; a cluster from before the file existed starts with the old default and is moved off it once connected.
 */
async function startEmbeddedCluster(stateDir: string, port: number, log: Logger): Promise<string> {
  const dataDir = join(stateDir, 'pg');
  const file = superuserPasswordFile(stateDir);
  if (!existsSync(file)) writePrivate(file, existsSync(join(dataDir, 'PG_VERSION')) ? OLD_DEFAULT_PASSWORD : generatePassword());
  log.info({ port, dataDir }, 'starting embedded Postgres');
  // Never stopped by the daemon: instances outlive it and use this Postgres; the next start adopts it.
  await startEmbedded({ dataDir, port, password: readPassword(file) });
  return embeddedAdminUrl(await settlePassword(file, port, log), port);
}

/**
 * Finish a rotation a crash interrupted (`<file>.next` holds the new password: adopt it if it logs in), then
 * rotate away from the old default. The new password is on disk before ALTER USER, so no crash can lose it.
 */
async function settlePassword(file: string, port: number, log: Logger): Promise<string> {
  const next = `${file}.next`;
  if (existsSync(next)) {
    const verdict = await tryLogin(readPassword(next), port);
    if (verdict === 'ok') renameSync(next, file);
    else if (verdict === 'denied') rmSync(next, { force: true });
  }
  const current = readPassword(file);
  if (current !== OLD_DEFAULT_PASSWORD) return current;
  const fresh = generatePassword();
  writePrivate(next, fresh);
  const c = new pg.Client({ connectionString: embeddedAdminUrl(current, port), connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query(`ALTER USER postgres PASSWORD ${c.escapeLiteral(fresh)}`);
  } catch (err: any) {
    // `.next` stays: whether ALTER USER ran or not, the next start settles it by trying it.
    log.warn({ err: { code: err.code, message: err.message } }, 'embedded Postgres still has the old default superuser password; the next start tries again');
    return current;
  } finally {
    await c.end().catch(() => {});
  }
  renameSync(next, file);
  log.info({ file }, 'embedded Postgres superuser moved off the old default password');
  return fresh;
}

async function tryLogin(password: string, port: number): Promise<'ok' | 'denied' | 'unknown'> {
  const c = new pg.Client({ connectionString: embeddedAdminUrl(password, port), connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
    return 'ok';
  } catch (err: any) {
    return err.code === '28P01' ? 'denied' : 'unknown';
  } finally {
    await c.end().catch(() => {});
  }
}

function readPassword(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

/** Write a secret file 0600 from its first byte, replacing any older one whole. */
function writePrivate(file: string, content: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, `${content}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** Which registry database a server holds: the legacy name only when it alone exists. */
async function registryDatabaseOn(adminUrl: string): Promise<string> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
    const { rows } = await c.query('SELECT datname FROM pg_database WHERE datname = ANY($1)', [[REGISTRY_DATABASE, LEGACY_REGISTRY_DATABASE]]);
    return rows.length === 1 && rows[0].datname === LEGACY_REGISTRY_DATABASE ? LEGACY_REGISTRY_DATABASE : REGISTRY_DATABASE;
  } catch {
    return REGISTRY_DATABASE; // unreachable: the caller says so when it connects
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * Create the registry database when missing, moving a legacy `atomo_fleet` registry to its new name. Returns the
 * name to use. An unreachable server is left for the daemon loop to wait on.
 */
async function ensureRegistryDatabase(adminUrl: string, log: Logger): Promise<string> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
    const { rows } = await c.query('SELECT datname FROM pg_database WHERE datname = ANY($1)', [[REGISTRY_DATABASE, LEGACY_REGISTRY_DATABASE]]);
    const names = new Set(rows.map((r) => r.datname as string));
    if (names.has(REGISTRY_DATABASE)) return REGISTRY_DATABASE;
    if (names.has(LEGACY_REGISTRY_DATABASE) && (await holdsRegistry(withDatabase(adminUrl, LEGACY_REGISTRY_DATABASE)))) {
      try {
        await c.query(`ALTER DATABASE ${LEGACY_REGISTRY_DATABASE} RENAME TO ${REGISTRY_DATABASE}`);
        log.info({ from: LEGACY_REGISTRY_DATABASE, to: REGISTRY_DATABASE }, 'registry database renamed out of the project namespace');
        return REGISTRY_DATABASE;
      } catch (err: any) {
        log.warn({ err: { code: err.code, message: err.message } },
          `the registry stays in ${LEGACY_REGISTRY_DATABASE} (could not rename it to ${REGISTRY_DATABASE}); `
          + `when nothing is connected to it, run: ALTER DATABASE ${LEGACY_REGISTRY_DATABASE} RENAME TO ${REGISTRY_DATABASE}`);
        return LEGACY_REGISTRY_DATABASE;
      }
    }
    await c.query(`CREATE DATABASE ${REGISTRY_DATABASE}`);
  } catch (err: any) {
    if (err.code === '42P04') return REGISTRY_DATABASE;
    log.warn({ err: { code: err.code, message: err.message } }, 'Postgres not reachable yet; the daemon waits and retries');
    if (err.code && !['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', '57P03'].includes(err.code)) {
      throw new FleetError('POSTGRES_UNREACHABLE', `cannot prepare the registry database: ${err.message}`, { cause: err });
    }
  } finally {
    await c.end().catch(() => {});
  }
  return REGISTRY_DATABASE;
}

/** A database holds the registry when it has the `projects` table (a project's database named atomo_fleet has not). */
async function holdsRegistry(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
    return (await c.query("SELECT to_regclass('public.projects') IS NOT NULL AS found")).rows[0].found === true;
  } finally {
    await c.end().catch(() => {});
  }
}
