// Restore a project's database from a dump so that a failed restore loses nothing:
//   1. the file must be a readable dump of this project's database (pg_restore --list);
//   2. the current database is dumped first (kind pre-restore): what a restore replaces can itself be restored;
//   3. the dump goes into a fresh scratch database `atomo_<id>-restore`, owned by the project's role and restored
//      AS that role (its own password): a crafted file can do nothing the project could not do itself;
//   4. every object is made the role's (tables, sequences, views, functions, types, schemas);
//   5. one transaction renames the current database to `atomo_<id>-previous` and the scratch one to `atomo_<id>`;
//   6. only then is `-previous` dropped (its content is the pre-restore dump). Up to the swap, the project's
//      database is untouched; a failure drops the scratch database and says so.
// The caller stops the instance first and starts it after (the daemon's executor does both).
import { basename } from 'node:path';
import { FleetError, describe, isFleetError } from '../core/errors.ts';
import {
  backupDatabase, connectInProjectDatabase, databaseNames, guardProjectDatabase, instanceDatabaseUrl, restoreScratchNames, withAdmin, type ProjectDatabase,
} from '../provision/database.ts';
import { restoreArchive, verifyArchive, type OnProgress } from './archive.ts';
import { backupFolder } from './layout.ts';

export interface RestoreOptions {
  adminUrl: string;
  backupDir: string;
  project: string;
  /** The dump to restore (custom format). */
  file: string;
  /** The project role's password (from its DATABASE_URL secret). */
  rolePassword: string;
  /** The commit in the pre-restore dump's name. */
  commit?: string | null;
  onProgress?: OnProgress;
}

export interface RestoreResult {
  /** The dump restored (file name). */
  backup: string;
  /** TOC entries restored. */
  entries: number;
  /** The dump of what was replaced. */
  preRestore: string;
  /** Objects whose owner had to be changed to the project's role (0 when the dump was restored as that role). */
  reowned: number;
  /** Set when `-previous` could not be dropped (it is dropped at the next restore, or by a delete). */
  previousKept?: string;
}

const fail = (project: string, message: string, cause?: unknown) => new FleetError('RESTORE', message, { project, cause });

export async function restoreDatabase(o: RestoreOptions): Promise<RestoreResult> {
  const db = databaseNames(o.project);
  const scratch = restoreScratchNames(db);
  const name = basename(o.file);
  // 1. A readable dump of this project's database, or nothing happens.
  let toc;
  try {
    toc = await verifyArchive(o.file);
  } catch (err) {
    throw fail(o.project, `${name} is not a readable backup (pg_restore --list: ${describe(err)}); nothing was changed`, err);
  }
  if (toc.database && toc.database !== db.database) {
    throw fail(o.project, `${name} is a backup of ${toc.database}, not of ${db.database}; nothing was changed`);
  }
  // 2. What is about to be replaced, kept as a dump (the guard refuses a database the fleet does not own).
  let preRestore: string;
  try {
    preRestore = await backupDatabase(o.adminUrl, db, backupFolder(o.backupDir, o.project), { kind: 'pre-restore', commit: o.commit, onProgress: o.onProgress });
  } catch (err) {
    if (isFleetError(err, 'DELETE_GUARD')) throw err;
    throw fail(o.project, `could not dump the current database before replacing it, so nothing was changed: ${describe(err)}`, err);
  }
  // 3. A fresh scratch database, restored into as the project's role.
  await withAdmin(o.adminUrl, o.project, async (c) => {
    await guardProjectDatabase(c, db, 'restore', {});
    for (const n of [scratch.restore, scratch.previous]) await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(n)} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${c.escapeIdentifier(scratch.restore)} OWNER ${c.escapeIdentifier(db.role)}`);
    await c.query(`REVOKE ALL ON DATABASE ${c.escapeIdentifier(scratch.restore)} FROM PUBLIC`);
    await c.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${c.escapeIdentifier(scratch.restore)} TO ${c.escapeIdentifier(db.role)}`);
  }, { code: 'RESTORE', doing: 'prepare the restore of' });
  let reowned: number;
  try {
    await restoreArchive(instanceDatabaseUrl(o.adminUrl, { ...db, database: scratch.restore }, o.rolePassword), o.file, { total: toc.entries, onProgress: o.onProgress });
    // 4. Every object the role's.
    reowned = await reownAll(withDatabase(o.adminUrl, scratch.restore), db.role);
  } catch (err) {
    await dropQuietly(o.adminUrl, db, scratch.restore);
    throw fail(o.project, `restore of ${db.database} from ${name} failed; the database was not changed: ${describe(err)}`, err);
  }
  // 5. The swap, in one transaction: either the old database or the restored one is atomo_<id>, never neither.
  try {
    await swap(o.adminUrl, db, scratch);
  } catch (err) {
    await dropQuietly(o.adminUrl, db, scratch.restore);
    throw fail(o.project, `could not swap the restored database in; ${db.database} was not changed: ${describe(err)}`, err);
  }
  // 6. The replaced database: its content is the pre-restore dump.
  const kept = await dropQuietly(o.adminUrl, db, scratch.previous);
  return { backup: name, entries: toc.entries, preRestore: basename(preRestore), reowned, ...(kept ? {} : { previousKept: scratch.previous }) };
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function dropQuietly(adminUrl: string, db: ProjectDatabase, name: string): Promise<boolean> {
  try {
    await withAdmin(adminUrl, db.project, (c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`));
    return true;
  } catch {
    return false;
  }
}

/** Rename current → previous and restored → current in one transaction, retried while something still connects. */
async function swap(adminUrl: string, db: ProjectDatabase, scratch: { restore: string; previous: string }): Promise<void> {
  await withAdmin(adminUrl, db.project, async (c) => {
    for (let attempt = 1; ; attempt++) {
      // The instance is stopped; anyone else still connected (a psql session) would hold the rename off.
      await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ANY($1) AND pid <> pg_backend_pid()', [[db.database, scratch.restore]]);
      try {
        await c.query('BEGIN');
        await c.query(`ALTER DATABASE ${c.escapeIdentifier(db.database)} RENAME TO ${c.escapeIdentifier(scratch.previous)}`);
        await c.query(`ALTER DATABASE ${c.escapeIdentifier(scratch.restore)} RENAME TO ${c.escapeIdentifier(db.database)}`);
        await c.query('COMMIT');
        return;
      } catch (err: any) {
        await c.query('ROLLBACK').catch(() => {});
        if (err.code !== '55006' || attempt >= 10) throw err; // object_in_use: a connection came back in between
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }, { code: 'RESTORE', doing: 'swap the restored database of' });
}

/** Objects in the database's own schemas not owned by `role` (extension members and the public schema's default owner aside). */
const FOREIGN_OWNED = `
  WITH r AS (SELECT oid FROM pg_roles WHERE rolname = $1),
  own AS (SELECT oid FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg_toast%' AND nspname NOT LIKE 'pg_temp%'),
  ext AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e')
  SELECT 'SCHEMA' AS kind, quote_ident(nspname) AS name, 0 AS pass FROM pg_namespace n
    WHERE n.oid IN (SELECT oid FROM own) AND nspowner <> (SELECT oid FROM r) AND pg_get_userbyid(nspowner) <> 'pg_database_owner'
      AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_namespace'::regclass AND objid = n.oid)
  UNION ALL
  SELECT CASE WHEN relkind = 'S' THEN 'SEQUENCE' WHEN relkind = 'v' THEN 'VIEW' WHEN relkind = 'm' THEN 'MATERIALIZED VIEW'
      WHEN relkind = 'f' THEN 'FOREIGN TABLE' WHEN relkind = 'c' THEN 'TYPE' ELSE 'TABLE' END, c.oid::regclass::text,
      CASE WHEN relkind = 'S' THEN 2 ELSE 1 END FROM pg_class c
    WHERE relnamespace IN (SELECT oid FROM own) AND relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND relowner <> (SELECT oid FROM r)
      AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_class'::regclass AND objid = c.oid)
  UNION ALL
  SELECT 'ROUTINE', p.oid::regprocedure::text, 1 FROM pg_proc p
    WHERE pronamespace IN (SELECT oid FROM own) AND proowner <> (SELECT oid FROM r)
      AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_proc'::regclass AND objid = p.oid)
  UNION ALL
  SELECT CASE WHEN typtype = 'd' THEN 'DOMAIN' ELSE 'TYPE' END, format_type(t.oid, NULL), 1 FROM pg_type t
    WHERE typnamespace IN (SELECT oid FROM own) AND typowner <> (SELECT oid FROM r) AND typtype IN ('b', 'd', 'e', 'r', 'm')
      AND NOT (typcategory = 'A' AND typelem <> 0) AND typrelid = 0
      AND NOT EXISTS (SELECT 1 FROM ext WHERE classid = 'pg_type'::regclass AND objid = t.oid)`;

/** Every object of the database at `url` not owned by `role`, as `KIND name`. */
export async function foreignOwned(url: string, role: string): Promise<string[]> {
  const c = await connectInProjectDatabase(url);
  try {
    return (await c.query(FOREIGN_OWNED, [role])).rows.map((r) => `${r.kind} ${r.name}`);
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * Give every object to `role`. Tables go first (their owned sequences and indexes follow them), then what is
 * left is asked again. Returns how many objects changed owner.
 */
export async function reownAll(url: string, role: string): Promise<number> {
  const c = await connectInProjectDatabase(url);
  let changed = 0;
  try {
    for (const pass of [0, 1, 2]) {
      const { rows } = await c.query(`SELECT * FROM (${FOREIGN_OWNED}) x WHERE pass = $2`, [role, pass]);
      for (const r of rows) {
        await c.query(`ALTER ${r.kind} ${r.name} OWNER TO ${c.escapeIdentifier(role)}`);
        changed++;
      }
    }
    const left = (await c.query(FOREIGN_OWNED, [role])).rows;
    if (left.length) throw new Error(`objects still not owned by ${role}: ${left.slice(0, 5).map((r) => `${r.kind} ${r.name}`).join(', ')}`);
    return changed;
  } finally {
    await c.end().catch(() => {});
  }
}
