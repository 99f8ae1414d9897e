// Per-project database and login role on the project Postgres server. Every step is idempotent: a daemon killed
// between any two statements converges on the next pass, with nothing created twice.
//
// Blast radius: the daemon touches only what it created. A role it creates carries a marker (a comment, set in
// the same transaction), a project's database is owned by that role, and nothing else is taken over, backed up or
// dropped: not a hand-made `atomo_x`, not the registry, not `postgres`.
import pg from 'pg';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FleetError, type ErrorCode } from '../core/errors.ts';
import { DEFAULT_CONNECTIONS } from '../core/plan.ts';
import { REGISTRY_DATABASE } from '../postgres/resolve.ts';
import { isConnectionError } from '../registry/registry.ts';
import { dumpDatabase, hide, type OnProgress } from '../backup/archive.ts';
import { backupName, type BackupKind } from '../backup/layout.ts';

const PROJECT_ID = /^[a-z][a-z0-9_]{0,39}$/;
/** Never a project's database, whatever a caller passes. */
const CONTROL_PLANE = new Set(['postgres', 'template0', 'template1', REGISTRY_DATABASE]);

export interface ProjectDatabase {
  project: string;
  database: string;
  role: string;
}

export function databaseNames(id: string): ProjectDatabase {
  // Manifest ids are validated as ^[a-z][a-z0-9_]{0,39}$, so these are safe identifiers.
  return { project: id, database: `atomo_${id}`, role: `atomo_${id}` };
}

/** The URL an instance uses: the project's own role and database on the admin URL's server (or `host`). */
export function instanceDatabaseUrl(adminUrl: string, db: ProjectDatabase, password: string, host?: string): string {
  const u = new URL(adminUrl);
  u.username = db.role;
  u.password = password;
  u.pathname = `/${db.database}`;
  if (host) u.hostname = host;
  return u.toString();
}

/** The comment that marks a role as created by atomo-fleet for project `id`. */
export function roleMarker(id: string): string {
  return `atomo-fleet project ${id}`;
}

export async function withAdmin<T>(
  adminUrl: string, project: string, fn: (c: pg.Client) => Promise<T>, failure: { code: ErrorCode; doing: string } = { code: 'PROVISION', doing: 'provision the database of' },
): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err: any) {
    throw new FleetError('POSTGRES_UNREACHABLE', `project Postgres server is unreachable: ${err.code ?? 'connection failed'}`, { project, cause: err });
  }
  try {
    return await fn(client);
  } catch (err: any) {
    if (err instanceof FleetError) throw err;
    if (isConnectionError(err)) {
      throw new FleetError('POSTGRES_UNREACHABLE', `project Postgres server went away: ${err.code ?? 'connection lost'}`, { project, cause: err });
    }
    // Postgres messages name objects, never passwords (the password travels as a literal we do not echo).
    throw new FleetError(failure.code, `could not ${failure.doing} ${project}: ${err.message}`, { project, cause: err });
  } finally {
    await client.end().catch(() => {});
  }
}

interface Found {
  roleExists: boolean;
  /** The role carries this project's marker. */
  marked: boolean;
  databaseExists: boolean;
  owner: string | null;
}

async function inspect(c: pg.Client, db: ProjectDatabase): Promise<Found> {
  const { rows: [r] } = await c.query(`SELECT
      (SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1) AS marker,
      EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS role_exists,
      (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $2) AS owner,
      EXISTS (SELECT 1 FROM pg_database WHERE datname = $2) AS database_exists`, [db.role, db.database]);
  return { roleExists: r.role_exists, marked: r.marker === roleMarker(db.project), databaseExists: r.database_exists, owner: r.owner };
}

/** Only `atomo_<id>` for a valid id, and never a control-plane database, whatever names a caller passes. */
function checkNames(db: ProjectDatabase, code: ErrorCode, verb: string, registryDatabase?: string): void {
  const fits = PROJECT_ID.test(db.project) && db.database === `atomo_${db.project}` && db.role === db.database;
  if (!fits || CONTROL_PLANE.has(db.database) || db.database === registryDatabase) {
    throw new FleetError(code, `refusing to ${verb} database ${db.database} (role ${db.role}): not the database atomo_<id> of project "${db.project}"`, { project: db.project });
  }
}

/**
 * Revoke CONNECT on `postgres` from PUBLIC (and so from every project role): project roles reach their own
 * database only. Idempotent and cheap (one query when already done); skipped where the admin is not the owner.
 */
export async function hardenServer(adminUrl: string): Promise<string[]> {
  return withAdmin(adminUrl, 'the fleet', hardenWith, { code: 'PROVISION', doing: 'harden the server of' });
}

async function hardenWith(c: pg.Client): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    const { rows } = await c.query(`SELECT datname FROM pg_database d WHERE datname = 'postgres'
      AND has_database_privilege('public', d.oid, 'CONNECT') AND pg_has_role(current_user, d.datdba, 'USAGE')`);
    try {
      for (const r of rows) await c.query(`REVOKE CONNECT ON DATABASE ${c.escapeIdentifier(r.datname)} FROM PUBLIC`);
      return rows.map((r) => r.datname as string);
    } catch (err) {
      // Projects are provisioned side by side, and Postgres fails a REVOKE whose catalog row another transaction
      // (a REVOKE beside it, say) changed meanwhile. Look again: the other one may have done it already.
      if (!concurrentlyUpdated(err) || attempt >= 5) throw err;
    }
  }
}

/** Postgres's answer to two transactions changing one catalog row at once (an internal error, by its message). */
function concurrentlyUpdated(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === 'XX000' && e.message === 'tuple concurrently updated';
}

/**
 * A role made before the marker existed is the fleet's when the password the fleet stored for it logs in: the
 * errors below come only after Postgres accepted the password. A role someone else made does not know it.
 */
async function provesPassword(adminUrl: string, db: ProjectDatabase, password: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: instanceDatabaseUrl(adminUrl, db, password), connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
    return true;
  } catch (err: any) {
    return ['42501', '3D000', '53300'].includes(err.code); // no CONNECT, no database yet, too many connections
  } finally {
    await c.end().catch(() => {});
  }
}

export interface EnsureOptions {
  /** CONNECTION LIMIT of the project's role (default: the core's DEFAULT_CONNECTIONS). */
  connectionLimit?: number;
}

export async function ensureDatabase(adminUrl: string, db: ProjectDatabase, password: string, opts: EnsureOptions = {}): Promise<{ created: boolean }> {
  const limit = opts.connectionLimit ?? DEFAULT_CONNECTIONS;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new FleetError('PROVISION', `the connection limit of ${db.project} must be a whole number of at least 1, not ${limit}`, { project: db.project });
  }
  checkNames(db, 'PROVISION', 'provision');
  return withAdmin(adminUrl, db.project, async (c) => {
    await hardenWith(c);
    const found = await inspect(c, db);
    // 1. Take over nothing the fleet did not create: a foreign role keeps its password, a foreign database its owner.
    if (found.roleExists && !found.marked && !(await provesPassword(adminUrl, db, password))) {
      throw new FleetError('PROVISION', `role ${db.role} exists but was not created by atomo-fleet (no ownership marker): it was left untouched. `
        + `Drop or rename it, or give the project another id`, { project: db.project });
    }
    if (found.databaseExists && found.owner !== db.role) {
      throw new FleetError('PROVISION', `database ${db.database} exists but is owned by ${found.owner}, not by the project's role ${db.role}: `
        + 'it was left untouched. Drop or rename it, or give the project another id', { project: db.project });
    }
    // 2. The role and its marker in one transaction: a crash never leaves an unmarked role of ours. The password
    //    is always (re)set: the secret store is the source of truth for it.
    const role = c.escapeIdentifier(db.role);
    await c.query('BEGIN');
    try {
      await c.query(`${found.roleExists ? 'ALTER' : 'CREATE'} ROLE ${role} LOGIN PASSWORD ${c.escapeLiteral(password)} CONNECTION LIMIT ${limit}`);
      if (!found.marked) await c.query(`COMMENT ON ROLE ${role} IS ${c.escapeLiteral(roleMarker(db.project))}`);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    }
    // 3. The database, owned by the role.
    if (!found.databaseExists) {
      try {
        await c.query(`CREATE DATABASE ${c.escapeIdentifier(db.database)} OWNER ${role}`);
      } catch (err: any) {
        if (err.code !== '42P04') throw err; // duplicate_database: created meanwhile; checked on the next pass.
      }
    }
    // 4. Only the project's own role (and the admin) may connect: other projects' roles are refused.
    await c.query(`REVOKE ALL ON DATABASE ${c.escapeIdentifier(db.database)} FROM PUBLIC`);
    await c.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${c.escapeIdentifier(db.database)} TO ${role}`);
    return { created: !found.databaseExists };
  });
}

export interface GuardOptions {
  /** The registry's database, when the caller knows it (it is refused in any case when it is `fleet_registry`). */
  registryDatabase?: string;
}

/**
 * Before a backup for a delete, and before the drop: the database must be exactly the project's, owned by the
 * role the fleet marked as the project's. Anything else is someone else's and stays as it is.
 */
export async function guardProjectDatabase(c: pg.Client, db: ProjectDatabase, verb: string, opts: GuardOptions): Promise<Found> {
  checkNames(db, 'DELETE_GUARD', verb, opts.registryDatabase);
  const found = await inspect(c, db);
  const why = found.databaseExists && found.owner !== db.role ? `it is owned by ${found.owner}, not by the project's role ${db.role}`
    : found.roleExists && !found.marked ? `role ${db.role} was not created by atomo-fleet (no ownership marker)`
      : null;
  if (why) throw new FleetError('DELETE_GUARD', `refusing to ${verb} ${db.database}: ${why}; nothing was changed`, { project: db.project });
  return found;
}

/** What a dump is for: its kind in the backup layout, and the commit the project ran. */
export interface BackupOptions extends GuardOptions {
  /** Default `pre-delete`: the guarded delete's backup (its failure keeps the database, and says so). */
  kind?: BackupKind;
  commit?: string | null;
  onProgress?: OnProgress;
}

/**
 * A fresh custom-format dump of the project's database into `dir` (the project's backup folder), verified before it
 * counts; returns its path. The guard refuses anything that is not the project's (DELETE_GUARD); a failed dump
 * leaves no file (DELETE_GUARD for a delete's backup, BACKUP otherwise).
 */
export async function backupDatabase(adminUrl: string, db: ProjectDatabase, dir: string, opts: BackupOptions = {}): Promise<string> {
  await withAdmin(adminUrl, db.project, (c) => guardProjectDatabase(c, db, 'back up', opts), { code: 'DELETE_GUARD', doing: 'check the database before backing up' });
  const kind = opts.kind ?? 'pre-delete';
  const file = join(dir, backupName(new Date(), kind, opts.commit));
  const u = new URL(adminUrl);
  u.pathname = `/${db.database}`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    await dumpDatabase(u.toString(), file, { tables: await tableCount(u.toString()), onProgress: opts.onProgress });
  } catch (err: any) {
    const detail = hide(String(err.message || err.code).trim(), decodeURIComponent(u.password));
    if (kind === 'pre-delete') throw new FleetError('DELETE_GUARD', `backup of ${db.database} failed, database kept: ${detail}`, { project: db.project });
    throw new FleetError('BACKUP', `backup of ${db.database} failed: ${detail}`, { project: db.project });
  }
  return file;
}

/**
 * A superuser session inside a project's own database. The project owns that database, so it can set the
 * database's search_path and put objects named like the catalog (a `pg_class` view, a `quote_ident` function)
 * first on it: anything such a session runs by an unqualified name would run the project's code as superuser.
 * The session's search_path is pinned to the catalog before any query.
 */
export async function connectInProjectDatabase(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('SET search_path = pg_catalog, pg_temp');
  } catch (err) {
    await c.end().catch(() => {});
    throw err;
  }
  return c;
}

/** How many tables a dump will copy (its progress total); null when that cannot be asked. */
async function tableCount(url: string): Promise<number | null> {
  let c: pg.Client | null = null;
  try {
    c = await connectInProjectDatabase(url);
    const { rows: [r] } = await c.query(`SELECT count(*)::int AS n FROM pg_class
      WHERE relkind IN ('r', 'p', 'm') AND relnamespace NOT IN (SELECT oid FROM pg_namespace WHERE nspname IN ('pg_catalog', 'information_schema') OR nspname LIKE 'pg_toast%')`);
    return r.n;
  } catch {
    return null;
  } finally {
    await c?.end().catch(() => {});
  }
}

export async function dropDatabase(adminUrl: string, db: ProjectDatabase, opts: GuardOptions = {}): Promise<void> {
  await withAdmin(adminUrl, db.project, async (c) => {
    const found = await guardProjectDatabase(c, db, 'drop', opts);
    if (found.databaseExists) await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(db.database)} WITH (FORCE)`);
    // What an interrupted restore may have left (restore.ts): owned by the role, so they go before it.
    for (const name of Object.values(restoreScratchNames(db))) await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`);
    if (found.roleExists) await c.query(`DROP ROLE IF EXISTS ${c.escapeIdentifier(db.role)}`);
  }, { code: 'PROVISION', doing: 'drop the database of' });
}

/**
 * The databases a restore works in: the dump goes into `<db>-restore`, the replaced one is `<db>-previous` until
 * it is dropped. A `-` is never in a project id, so no project's database can have these names.
 */
export function restoreScratchNames(db: ProjectDatabase): { restore: string; previous: string } {
  return { restore: `${db.database}-restore`, previous: `${db.database}-previous` };
}
