// Per-project database and login role on the project Postgres server. Every step is idempotent: a daemon killed
// between any two statements converges on the next pass, with nothing created twice.
import pg from 'pg';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FleetError } from '../errors.ts';
import { isConnectionError } from '../registry/registry.ts';

const run = promisify(execFile);

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

async function withAdmin<T>(adminUrl: string, project: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
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
    throw new FleetError('PROVISION', `could not provision the database of ${project}: ${err.message}`, { project, cause: err });
  } finally {
    await client.end().catch(() => {});
  }
}

export async function ensureDatabase(adminUrl: string, db: ProjectDatabase, password: string): Promise<{ created: boolean }> {
  return withAdmin(adminUrl, db.project, async (c) => {
    const role = c.escapeIdentifier(db.role);
    const roleExists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [db.role])).rowCount;
    // Always (re)set the password: the secret store is the source of truth for it.
    await c.query(`${roleExists ? 'ALTER' : 'CREATE'} ROLE ${role} LOGIN PASSWORD ${c.escapeLiteral(password)}`);
    const exists = (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.database])).rowCount;
    if (!exists) {
      try {
        await c.query(`CREATE DATABASE ${c.escapeIdentifier(db.database)} OWNER ${role}`);
      } catch (err: any) {
        if (err.code !== '42P04') throw err; // duplicate_database: created meanwhile, fine.
      }
    }
    // Only the project's own role (and the admin) may connect: other projects' roles are refused.
    await c.query(`REVOKE ALL ON DATABASE ${c.escapeIdentifier(db.database)} FROM PUBLIC`);
    await c.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${c.escapeIdentifier(db.database)} TO ${role}`);
    return { created: !exists };
  });
}

function pgDumpPath(): string {
  for (const p of ['/usr/lib/postgresql/15/bin/pg_dump', '/usr/bin/pg_dump']) if (existsSync(p)) return p;
  return 'pg_dump';
}

/** A fresh plain-SQL dump of the project's database; throws DELETE_GUARD when it cannot be made. */
export async function backupDatabase(adminUrl: string, db: ProjectDatabase, dir: string): Promise<string> {
  const file = join(dir, `${db.database}-${new Date().toISOString().replace(/[:.]/g, '-')}.sql`);
  const u = new URL(adminUrl);
  const password = decodeURIComponent(u.password);
  u.password = '';
  u.pathname = `/${db.database}`;
  try {
    mkdirSync(dir, { recursive: true });
    // The password goes through the environment, so it never shows in the process list or an error message.
    await run(pgDumpPath(), ['--no-owner', '--file', file, u.toString()], { env: { ...process.env, PGPASSWORD: password } });
  } catch (err: any) {
    throw new FleetError('DELETE_GUARD', `backup of ${db.database} failed, database kept: ${String(err.stderr || err.code || err.message).trim()}`, { project: db.project, cause: err });
  }
  return file;
}

export async function dropDatabase(adminUrl: string, db: ProjectDatabase): Promise<void> {
  await withAdmin(adminUrl, db.project, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(db.database)} WITH (FORCE)`);
    await c.query(`DROP ROLE IF EXISTS ${c.escapeIdentifier(db.role)}`);
  });
}
