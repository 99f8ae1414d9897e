// Blast radius, Postgres side: no project name reaches the control plane, the daemon takes over nothing it did not
// create, project roles cannot reach the registry, each role has a connection limit, and dumps are private.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { execFileSync } from 'node:child_process';
import { pgBin } from '../../daemon/backup/archive.ts';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connectError, startPostgres, type TestPostgres } from '../harness/postgres.ts';
import { backupDatabase, databaseNames, dropDatabase, ensureDatabase, instanceDatabaseUrl } from '../../daemon/provision/database.ts';
import { provisionProject } from '../../daemon/provision/project.ts';
import { resolveDatabases } from '../../daemon/postgres/resolve.ts';
import { Registry } from '../../daemon/registry/registry.ts';
import { createLocalSecretStore } from '../../daemon/secrets/local.ts';
import { createLogger } from '../../daemon/log.ts';
import { generatePassword } from '../../daemon/secrets/generate.ts';
import type { FleetConfig, SecretStore } from '../../daemon/core/types.ts';

let pgs: TestPostgres;
let scratch: string;
const lines: string[] = [];
const log = createLogger({
  level: 'debug',
  destination: new Writable({ write(chunk, _e, cb) { lines.push(...String(chunk).split('\n').filter(Boolean)); cb(); } }),
});

beforeAll(async () => {
  pgs = await startPostgres();
  scratch = mkdtempSync(join(tmpdir(), 'fleet-isolation-'));
});
afterAll(async () => {
  await pgs?.destroy();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function urlOf(database: string, user?: string, password?: string): string {
  const u = new URL(pgs.url);
  u.pathname = `/${database}`;
  if (user) u.username = user;
  if (password !== undefined) u.password = password;
  return u.toString();
}

async function sql(text: string, params: unknown[] = [], database = 'postgres'): Promise<any[]> {
  const c = new pg.Client(urlOf(database));
  await c.connect();
  try {
    return (await c.query(text, params)).rows;
  } finally {
    await c.end();
  }
}


const exists = async (kind: 'database' | 'role', name: string) => (kind === 'database'
  ? await sql('SELECT 1 FROM pg_database WHERE datname = $1', [name])
  : await sql('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).length === 1;
const marker = async (role: string) => (await sql("SELECT shobj_description(oid, 'pg_authid') AS c FROM pg_roles WHERE rolname = $1", [role]))[0]?.c ?? null;
const fleet = { postgres: { admin: 'unused' } } as FleetConfig;
const noSecrets = {} as SecretStore;

describe('no project name reaches the control plane', () => {
  it('an existing registry atomo_fleet is renamed to fleet_registry at start, outside the atomo_ namespace', async () => {
    await sql('CREATE DATABASE atomo_fleet');
    await sql("CREATE TABLE projects (id TEXT PRIMARY KEY); INSERT INTO projects VALUES ('kept')", [], 'atomo_fleet');
    const dbs = await resolveDatabases({ fleet, secrets: noSecrets, stateDir: scratch, log, admin: pgs.url });
    expect(new URL(dbs.registryUrl).pathname).toBe('/fleet_registry');
    expect(await exists('database', 'atomo_fleet')).toBe(false);
    expect(await sql('SELECT id FROM projects', [], 'fleet_registry')).toEqual([{ id: 'kept' }]);
    // Again: nothing more to do.
    expect(new URL((await resolveDatabases({ fleet, secrets: noSecrets, stateDir: scratch, log, admin: pgs.url })).registryUrl).pathname).toBe('/fleet_registry');
  });

  it('when atomo_fleet cannot be renamed (in use), the registry stays there and a warning says so', async () => {
    await sql('ALTER DATABASE fleet_registry RENAME TO atomo_fleet');
    const holder = new pg.Client(urlOf('atomo_fleet'));
    await holder.connect();
    try {
      const before = lines.length;
      const dbs = await resolveDatabases({ fleet, secrets: noSecrets, stateDir: scratch, log, admin: pgs.url });
      expect(new URL(dbs.registryUrl).pathname).toBe('/atomo_fleet');
      expect(lines.slice(before).some((l) => JSON.parse(l).level === 40 && /atomo_fleet/.test(l))).toBe(true);
    } finally {
      await holder.end();
    }
  });

  it('a project with id `fleet` can neither take over nor back up nor drop a registry named atomo_fleet', async () => {
    const db = databaseNames('fleet');
    await expect(ensureDatabase(pgs.url, db, generatePassword())).rejects.toMatchObject({ code: 'PROVISION' });
    expect(await exists('role', 'atomo_fleet')).toBe(false);
    await expect(backupDatabase(pgs.url, db, join(scratch, 'backups'))).rejects.toMatchObject({ code: 'DELETE_GUARD' });
    await expect(dropDatabase(pgs.url, db)).rejects.toMatchObject({ code: 'DELETE_GUARD' });
    await expect(dropDatabase(pgs.url, db, { registryDatabase: 'atomo_fleet' })).rejects.toMatchObject({ code: 'DELETE_GUARD' });
    expect(await exists('database', 'atomo_fleet')).toBe(true);
    expect(await sql('SELECT id FROM projects', [], 'atomo_fleet')).toEqual([{ id: 'kept' }]);
  });

  it.each([
    ['the registry', { project: 'fleet', database: 'fleet_registry', role: 'atomo_fleet' }],
    ['the registry under its own role name', { project: 'registry', database: 'fleet_registry', role: 'fleet_registry' }],
    ['postgres', { project: 'x', database: 'postgres', role: 'atomo_x' }],
    ['template1', { project: 'x', database: 'template1', role: 'atomo_x' }],
    ['a name outside the project namespace', { project: 'x', database: 'atomo_y', role: 'atomo_x' }],
  ])('dropDatabase refuses names pointing at %s', async (_what, db) => {
    if (!(await exists('database', db.database))) await sql(`CREATE DATABASE ${db.database}`);
    await expect(dropDatabase(pgs.url, db)).rejects.toMatchObject({ code: 'DELETE_GUARD' });
    await expect(backupDatabase(pgs.url, db, join(scratch, 'backups'))).rejects.toMatchObject({ code: 'DELETE_GUARD' });
    expect(await exists('database', db.database)).toBe(true);
  });
});

describe('the daemon takes over nothing it did not create', () => {
  it('marks the role it creates as the fleet\'s', async () => {
    expect(await ensureDatabase(pgs.url, databaseNames('alpha'), generatePassword())).toEqual({ created: true });
    expect(await marker('atomo_alpha')).toBe('atomo-fleet project alpha');
    expect((await sql("SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = 'atomo_alpha'"))[0].owner).toBe('atomo_alpha');
    expect(await ensureDatabase(pgs.url, databaseNames('alpha'), generatePassword())).toEqual({ created: false });
  });

  it('refuses a role that exists without the marker, and leaves its password alone', async () => {
    await sql("CREATE ROLE atomo_squat LOGIN PASSWORD 'theirs-password'");
    const ours = generatePassword();
    const err = await ensureDatabase(pgs.url, databaseNames('squat'), ours).catch((e) => e);
    expect(err).toMatchObject({ code: 'PROVISION' });
    expect(err.message).toMatch(/atomo_squat.*not created by atomo-fleet/);
    expect(err.message).not.toContain(ours);
    expect(await connectError(urlOf('template1', 'atomo_squat', 'theirs-password'))).toBeNull();
    expect((await connectError(urlOf('template1', 'atomo_squat', ours)))?.code).toBe('28P01');
    expect(await exists('database', 'atomo_squat')).toBe(false);
  });

  it('refuses a database atomo_<id> that is not owned by the project\'s marked role, and creates no role', async () => {
    await sql('CREATE DATABASE atomo_victim');
    await expect(ensureDatabase(pgs.url, databaseNames('victim'), generatePassword())).rejects.toMatchObject({ code: 'PROVISION' });
    expect(await exists('role', 'atomo_victim')).toBe(false);
  });

  it('adopts a role made before the marker existed only when the stored password logs in as it', async () => {
    const pw = generatePassword();
    await sql(`CREATE ROLE atomo_legacy LOGIN PASSWORD '${pw}'`);
    await sql('CREATE DATABASE atomo_legacy OWNER atomo_legacy');
    await expect(ensureDatabase(pgs.url, databaseNames('legacy'), generatePassword())).rejects.toMatchObject({ code: 'PROVISION' });
    expect(await marker('atomo_legacy')).toBeNull();
    expect(await ensureDatabase(pgs.url, databaseNames('legacy'), pw)).toEqual({ created: false });
    expect(await marker('atomo_legacy')).toBe('atomo-fleet project legacy');
  });

  it('backupDatabase and dropDatabase never touch a hand-made atomo_victim nor an unmarked role', async () => {
    const dir = join(scratch, 'victim-backups');
    await expect(backupDatabase(pgs.url, databaseNames('victim'), dir)).rejects.toMatchObject({ code: 'DELETE_GUARD' });
    await expect(dropDatabase(pgs.url, databaseNames('victim'))).rejects.toMatchObject({ code: 'DELETE_GUARD' });
    expect(await exists('database', 'atomo_victim')).toBe(true);
    expect(() => readdirSync(dir)).toThrow(); // no dump either
    // A role without the marker, alone or owning its database.
    await expect(dropDatabase(pgs.url, databaseNames('squat'))).rejects.toMatchObject({ code: 'DELETE_GUARD' });
    expect(await exists('role', 'atomo_squat')).toBe(true);
    await sql("CREATE ROLE atomo_owned LOGIN PASSWORD 'x'");
    await sql('CREATE DATABASE atomo_owned OWNER atomo_owned');
    await expect(dropDatabase(pgs.url, databaseNames('owned'))).rejects.toMatchObject({ code: 'DELETE_GUARD' });
    expect(await exists('database', 'atomo_owned')).toBe(true);
    expect(await exists('role', 'atomo_owned')).toBe(true);
  });

  it('still drops what the fleet created', async () => {
    await ensureDatabase(pgs.url, databaseNames('gone'), generatePassword());
    await dropDatabase(pgs.url, databaseNames('gone'));
    expect(await exists('database', 'atomo_gone')).toBe(false);
    expect(await exists('role', 'atomo_gone')).toBe(false);
    await dropDatabase(pgs.url, databaseNames('gone')); // again: nothing left, nothing to refuse
  });
});

describe('project roles cannot reach the control plane', () => {
  it('a project role cannot connect to the registry database nor to postgres, so it cannot take the daemon\'s lock', async () => {
    await sql('DROP DATABASE IF EXISTS fleet_registry');
    await sql('CREATE DATABASE fleet_registry');
    const registry = new Registry(urlOf('fleet_registry'), log);
    await registry.migrate();
    await registry.close();
    const pw = generatePassword();
    const db = databaseNames('beta');
    await ensureDatabase(pgs.url, db, pw);
    expect(await connectError(instanceDatabaseUrl(pgs.url, db, pw))).toBeNull(); // its own database: yes
    for (const target of ['fleet_registry', 'postgres']) {
      const err = await connectError(urlOf(target, db.role, pw));
      expect(err, target).toMatchObject({ code: '42501' });
      expect(err!.message).toMatch(/permission denied for database/);
    }
    // The daemon itself still gets in and takes its lock.
    const daemon = new Registry(urlOf('fleet_registry'), log);
    expect(await daemon.tryLock()).toBe(true);
    await daemon.close();
  });

  it('projects provisioned side by side on a server not yet hardened all succeed, and postgres ends up closed', async () => {
    // Each provision first closes CONNECT on postgres when it is still open. Side by side (the daemon provisions
    // FLEET_CONCURRENCY projects at a time) their REVOKEs update the same catalog row, and Postgres fails all but
    // the first with "tuple concurrently updated": a cold fleet's first pass lost projects to a backoff. Here an
    // open transaction holds that row (as any other writer of it may) until every provision waits for it.
    await sql('GRANT CONNECT ON DATABASE postgres TO PUBLIC');
    const holder = new pg.Client(urlOf('postgres'));
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('ALTER DATABASE postgres CONNECTION LIMIT -1');
      const ids = Array.from({ length: 6 }, (_, i) => `side${i}`);
      const results = Promise.allSettled(ids.map((id) => ensureDatabase(pgs.url, databaseNames(id), generatePassword())));
      const waiting = async () => Number((await sql(`SELECT count(*) AS n FROM pg_stat_activity
        WHERE wait_event_type = 'Lock' AND query LIKE 'REVOKE CONNECT ON DATABASE "postgres"%'`))[0].n);
      for (let i = 0; i < 200 && (await waiting()) < ids.length; i++) await new Promise((r) => setTimeout(r, 25));
      expect(await waiting()).toBe(ids.length);
      await holder.query('COMMIT');
      const failed = (await results).flatMap((r, i) => (r.status === 'rejected' ? [`${ids[i]}: ${(r.reason as Error).message}`] : []));
      expect(failed).toEqual([]);
    } finally {
      await holder.end();
    }
    expect((await sql("SELECT has_database_privilege('public', 'postgres', 'CONNECT') AS open"))[0].open).toBe(false);
  });

  it('migrate revokes CONNECT only where it may: a registry role that does not own its database gets a warning', async () => {
    await sql("CREATE ROLE reg_user LOGIN PASSWORD 'reg-password'");
    await sql('CREATE DATABASE reg_other');
    await sql('GRANT CREATE ON SCHEMA public TO reg_user', [], 'reg_other');
    const before = lines.length;
    const registry = new Registry(urlOf('reg_other', 'reg_user', 'reg-password'), log);
    await registry.migrate();
    await registry.close();
    expect(lines.slice(before).some((l) => JSON.parse(l).level === 40 && /CONNECT/.test(l))).toBe(true);
  });
});

describe('connection limit per project', () => {
  it('CONNECTION LIMIT n on CREATE and ALTER ROLE: with 2, a third connection fails', async () => {
    const pw = generatePassword();
    const db = databaseNames('gamma');
    await ensureDatabase(pgs.url, db, pw, { connectionLimit: 2 });
    const limit = async () => (await sql('SELECT rolconnlimit FROM pg_roles WHERE rolname = $1', [db.role]))[0].rolconnlimit;
    expect(await limit()).toBe(2);
    const held = [new pg.Client(instanceDatabaseUrl(pgs.url, db, pw)), new pg.Client(instanceDatabaseUrl(pgs.url, db, pw))];
    for (const c of held) await c.connect();
    try {
      const err = await connectError(instanceDatabaseUrl(pgs.url, db, pw));
      expect(err?.message).toMatch(/too many connections for role/);
    } finally {
      for (const c of held) await c.end();
    }
    await ensureDatabase(pgs.url, db, pw, { connectionLimit: 3 });
    expect(await limit()).toBe(3);
    await ensureDatabase(pgs.url, db, pw);
    expect(await limit()).toBe(20);
  });

  it('provisionProject passes the connection limit through', async () => {
    const secrets = createLocalSecretStore({ dir: join(scratch, 'secrets'), prefix: '/atomo' });
    const ctx = { secrets, secretPrefix: '/atomo', adminUrl: pgs.url, stateDir: scratch };
    await provisionProject(ctx, 'delta', { connectionLimit: 5 });
    expect((await sql("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'atomo_delta'"))[0].rolconnlimit).toBe(5);
  });
});

describe('dumps are private', () => {
  const dir = () => join(scratch, 'dumps', 'omega');

  beforeAll(async () => {
    await ensureDatabase(pgs.url, databaseNames('omega'), generatePassword());
    await sql("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('precious')", [], 'atomo_omega');
  });

  /** Start a backup while a lock holds pg_dump back; returns the pending backup and the blocked pg_dump's pid. */
  async function blockedBackup(holder: pg.Client) {
    await holder.query('BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
    const pending: Promise<{ f?: string; e?: any }> = backupDatabase(pgs.url, databaseNames('omega'), dir()).then((f) => ({ f }), (e) => ({ e }));
    let pid = 0;
    await expect.poll(async () => {
      pid = (await sql("SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'"))[0]?.pid ?? 0;
      return pid;
    }, { timeout: 15_000 }).toBeGreaterThan(0);
    return { pending, pid };
  }

  it('the dump file is 0600 from its first byte, in a 0700 folder', async () => {
    const holder = new pg.Client(urlOf('atomo_omega'));
    await holder.connect();
    let r: { f?: string; e?: unknown };
    try {
      const { pending } = await blockedBackup(holder);
      // pg_dump has written nothing yet: the file is already there, and already private.
      const early = readdirSync(dir());
      expect(early).toHaveLength(1);
      expect(statSync(join(dir(), early[0])).mode & 0o777).toBe(0o600);
      await holder.query('COMMIT');
      r = await pending;
    } finally {
      await holder.end(); // ends the lock, whatever happened
    }
    expect(r.e).toBeUndefined();
    expect(statSync(r.f!).mode & 0o777).toBe(0o600);
    expect(statSync(dir()).mode & 0o777).toBe(0o700);
    expect(execFileSync(pgBin('pg_restore'), ['--file=-', r.f!], { encoding: 'utf8' })).toContain('precious'); // custom format: compressed
    rmSync(r.f!);
  });

  it('a failed dump leaves no file behind, and its message holds no password', async () => {
    const holder = new pg.Client(urlOf('atomo_omega'));
    await holder.connect();
    let r: { f?: string; e?: any };
    try {
      const { pending, pid } = await blockedBackup(holder);
      await sql('SELECT pg_terminate_backend($1)', [pid]);
      r = await pending;
    } finally {
      await holder.end();
    }
    expect(r.e).toMatchObject({ code: 'DELETE_GUARD' });
    expect(r.e.message).toMatch(/backup of atomo_omega failed, database kept/);
    expect(readdirSync(dir())).toEqual([]);
    const password = decodeURIComponent(new URL(pgs.url).password);
    expect(password.length).toBeGreaterThan(8);
    expect(`${r.e.message} ${r.e.cause?.message ?? ''}`).not.toContain(password);
  });

  it('a dump that cannot log in says so without the password, and leaves no file', async () => {
    const wrong = `wrong-${generatePassword()}`;
    const bad = new URL(pgs.url);
    bad.password = wrong;
    const err = await backupDatabase(bad.toString(), databaseNames('omega'), dir()).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(`${err.message} ${err.cause?.message ?? ''}`).not.toContain(wrong);
    expect(readdirSync(dir())).toEqual([]);
  });
});
