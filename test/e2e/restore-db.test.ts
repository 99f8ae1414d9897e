// Backup → change → restore round trips on a real Postgres with a real project role: rows, sequences, ownership,
// a restore over conflicting tables, failed restores that lose nothing, a pre-delete dump, private files.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres, type TestPostgres } from '../harness/postgres.ts';
import { backupDatabase, databaseNames, ensureDatabase, instanceDatabaseUrl } from '../../daemon/provision/database.ts';
import { generatePassword } from '../../daemon/secrets/generate.ts';
import { backupRegistry, takeBackup } from '../../daemon/backup/take.ts';
import { foreignOwned, reownAll, restoreDatabase } from '../../daemon/backup/restore.ts';
import { listBackups } from '../../daemon/backup/layout.ts';
import { verifyArchive } from '../../daemon/backup/archive.ts';

let pgs: TestPostgres;
let dir: string;
const password = generatePassword();
const db = databaseNames('blog');
const roleUrl = () => instanceDatabaseUrl(pgs.url, db, password);
const adminOn = (database: string) => { const u = new URL(pgs.url); u.pathname = `/${database}`; return u.toString(); };

async function q(url: string, sql: string, params: unknown[] = []): Promise<any[]> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Everything a round trip must bring back: tables and their columns, rows, sequence positions. */
async function snapshot(): Promise<unknown> {
  const tables = await q(roleUrl(), `SELECT table_schema || '.' || table_name AS t, string_agg(column_name || ':' || data_type, ',' ORDER BY ordinal_position) AS cols
    FROM information_schema.columns WHERE table_schema IN ('public', 'app') GROUP BY 1 ORDER BY 1`);
  const rows = await q(roleUrl(), 'SELECT n, title, mood FROM posts ORDER BY n');
  const app = await q(roleUrl(), 'SELECT * FROM app.settings ORDER BY 1');
  const seq = await q(roleUrl(), 'SELECT last_value, is_called FROM posts_n_seq');
  return { tables, rows, app, seq };
}

beforeAll(async () => {
  pgs = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'fleet-backups-'));
  await ensureDatabase(pgs.url, db, password);
  // What a project may create itself, as its own role: every kind of object a restore must give back to it.
  await q(roleUrl(), `
    CREATE TYPE mood AS ENUM ('happy', 'sad');
    CREATE DOMAIN short_text AS text CHECK (length(VALUE) < 100);
    CREATE TABLE posts (n serial PRIMARY KEY, title short_text NOT NULL, mood mood);
    CREATE VIEW happy_posts AS SELECT * FROM posts WHERE mood = 'happy';
    CREATE MATERIALIZED VIEW post_count AS SELECT count(*) AS c FROM posts;
    CREATE FUNCTION shout(t text) RETURNS text LANGUAGE sql AS $$ SELECT upper(t) $$;
    CREATE SCHEMA app;
    CREATE TABLE app.settings (k text PRIMARY KEY, v jsonb);
    INSERT INTO posts (title, mood) VALUES ('first', 'happy'), ('second', 'sad'), ('third', 'happy');
    INSERT INTO app.settings VALUES ('theme', '{"dark": true}');
  `);
});
afterAll(async () => {
  await pgs?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a backup', () => {
  it('is a verified custom-format dump, 0600 in a 0700 folder, listed with its time, size, kind and commit', async () => {
    const info = await takeBackup({ adminUrl: pgs.url, backupDir: dir, project: 'blog', kind: 'manual', commit: 'abcdef1234567890' });
    expect(info).toMatchObject({ project: 'blog', kind: 'manual', commit: 'abcdef123456' });
    expect(statSync(info.file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'blog')).mode & 0o777).toBe(0o700);
    expect(readFileSync(info.file).subarray(0, 5).toString()).toBe('PGDMP');
    expect((await verifyArchive(info.file)).database).toBe('atomo_blog');
    expect(listBackups(dir, 'blog')).toEqual([{ ...info, size: statSync(info.file).size }]);
  });

  it('of the registry lands in _registry, 0600', async () => {
    const url = await pgs.database('fleet_registry');
    await q(url, 'CREATE TABLE projects (id text); INSERT INTO projects VALUES (\'blog\')');
    const info = await backupRegistry({ registryUrl: url, backupDir: dir, kind: 'manual' });
    expect(info.file).toBe(join(dir, '_registry', info.name));
    expect(statSync(info.file).mode & 0o777).toBe(0o600);
    expect((await verifyArchive(info.file)).database).toBe('fleet_registry');
  });
});

describe('a restore', () => {
  let backup: string;
  let before: unknown;

  beforeAll(async () => {
    before = await snapshot();
    backup = (await takeBackup({ adminUrl: pgs.url, backupDir: dir, project: 'blog', kind: 'manual' })).file;
  });

  it('over a changed database with conflicting and extra tables gives back exactly the backup', async () => {
    await q(roleUrl(), `
      INSERT INTO posts (title, mood) VALUES ('fourth', 'sad'), ('fifth', 'sad');
      DELETE FROM posts WHERE n = 1;
      DROP TABLE app.settings;
      CREATE TABLE app.settings (other int);
      CREATE TABLE extra (x int);
      ALTER TABLE posts ADD COLUMN junk int;
    `);
    expect(await snapshot()).not.toEqual(before);
    const result = await restoreDatabase({ adminUrl: pgs.url, backupDir: dir, project: 'blog', file: backup, rolePassword: password });
    expect(result).toMatchObject({ backup: backup.split('/').pop(), reowned: 0 });
    expect(await snapshot()).toEqual(before);
    expect(await q(roleUrl(), "SELECT to_regclass('public.extra') AS t")).toEqual([{ t: null }]);
    // The scratch databases are gone; the replaced content is a pre-restore dump.
    expect((await q(pgs.url, "SELECT datname FROM pg_database WHERE datname LIKE 'atomo_blog%' ORDER BY 1")).map((r) => r.datname)).toEqual(['atomo_blog']);
    const pre = listBackups(dir, 'blog').find((b) => b.name === result.preRestore)!;
    expect(pre.kind).toBe('pre-restore');
    expect(statSync(pre.file).mode & 0o777).toBe(0o600);
  });

  it('sequences continue after the restore: nextval does not collide with restored rows', async () => {
    const [{ n }] = await q(roleUrl(), "INSERT INTO posts (title) VALUES ('after restore') RETURNING n");
    expect(n).toBe(4);
    await q(roleUrl(), 'DELETE FROM posts WHERE n = 4');
  });

  it('every object belongs to the project role, which can write and refresh them', async () => {
    expect(await foreignOwned(adminOn('atomo_blog'), 'atomo_blog')).toEqual([]);
    const owners = await q(adminOn('atomo_blog'), `SELECT DISTINCT pg_get_userbyid(relowner) AS o FROM pg_class WHERE relnamespace IN
      (SELECT oid FROM pg_namespace WHERE nspname IN ('public', 'app'))`);
    expect(owners).toEqual([{ o: 'atomo_blog' }]);
    await q(roleUrl(), "INSERT INTO app.settings VALUES ('lang', '\"en\"'); DELETE FROM app.settings WHERE k = 'lang'; REFRESH MATERIALIZED VIEW post_count; SELECT shout('x')");
    expect((await q(pgs.url, "SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = 'atomo_blog'"))[0].o).toBe('atomo_blog');
  });

  it('a corrupt file fails before anything changes: the old database still serves', async () => {
    const bad = join(dir, 'corrupt.dump');
    writeFileSync(bad, 'PGDMP this is not a dump');
    const now = await snapshot();
    const err = await restoreDatabase({ adminUrl: pgs.url, backupDir: dir, project: 'blog', file: bad, rolePassword: password }).catch((e) => e);
    expect(err).toMatchObject({ code: 'RESTORE' });
    expect(err.message).toMatch(/corrupt\.dump is not a readable backup .*nothing was changed/);
    expect(await snapshot()).toEqual(now);
  });

  it('a dump that breaks halfway loses nothing: the scratch database goes, the project keeps its data', async () => {
    await q(roleUrl(), "INSERT INTO posts (title) VALUES ('written after the backup')");
    const now = await snapshot();
    // The TOC is whole (pg_restore --list passes), the compressed data behind it is garbage.
    const cut = join(dir, 'cut.dump');
    const bytes = Buffer.from(readFileSync(backup));
    bytes.fill(0x55, bytes.length - 120, bytes.length - 20);
    writeFileSync(cut, bytes);
    await verifyArchive(cut);
    const err = await restoreDatabase({ adminUrl: pgs.url, backupDir: dir, project: 'blog', file: cut, rolePassword: password }).catch((e) => e);
    expect(err).toMatchObject({ code: 'RESTORE' });
    expect(err.message).toMatch(/restore of atomo_blog from cut\.dump failed; the database was not changed/);
    expect(err.message).not.toContain(password);
    expect(await snapshot()).toEqual(now);
    expect((await q(pgs.url, "SELECT datname FROM pg_database WHERE datname LIKE 'atomo_blog%'")).map((r) => r.datname)).toEqual(['atomo_blog']);
  });

  it('refuses a dump of another project', async () => {
    await ensureDatabase(pgs.url, databaseNames('shop'), generatePassword());
    const shop = await takeBackup({ adminUrl: pgs.url, backupDir: dir, project: 'shop', kind: 'manual' });
    const err = await restoreDatabase({ adminUrl: pgs.url, backupDir: dir, project: 'blog', file: shop.file, rolePassword: password }).catch((e) => e);
    expect(err.message).toMatch(/is a backup of atomo_shop, not of atomo_blog; nothing was changed/);
  });

  it('a pre-delete dump (the guarded delete\'s) is restorable too', async () => {
    const file = await backupDatabase(pgs.url, db, join(dir, 'blog'));
    expect(file).toMatch(/-pre-delete\.dump$/);
    await q(roleUrl(), 'TRUNCATE posts');
    await restoreDatabase({ adminUrl: pgs.url, backupDir: dir, project: 'blog', file, rolePassword: password });
    expect((await q(roleUrl(), 'SELECT count(*)::int AS n FROM posts'))[0].n).toBe(4);
    expect(readdirSync(join(dir, 'blog')).every((n) => statSync(join(dir, 'blog', n)).mode % 0o1000 === 0o600)).toBe(true);
  });
});

describe('re-owning', () => {
  it('gives every kind of object made by another role to the project role', async () => {
    await ensureDatabase(pgs.url, databaseNames('owned'), generatePassword());
    const url = adminOn('atomo_owned');
    // Made by the superuser: a dump restored by an admin without --no-owner would look like this.
    await q(url, `
      CREATE SCHEMA s; CREATE TYPE s.color AS ENUM ('red'); CREATE DOMAIN s.pos AS int CHECK (VALUE > 0);
      CREATE TYPE s.pair AS (a int, b int);
      CREATE TABLE s.t (n serial PRIMARY KEY, c s.color, p s.pos); CREATE SEQUENCE s.loose;
      CREATE VIEW s.v AS SELECT * FROM s.t; CREATE MATERIALIZED VIEW s.m AS SELECT count(*) FROM s.t;
      CREATE FUNCTION s.f() RETURNS int LANGUAGE sql AS 'SELECT 1'; CREATE PROCEDURE s.p() LANGUAGE sql AS 'SELECT 1';
    `);
    const before = await foreignOwned(url, 'atomo_owned');
    expect(before.length).toBeGreaterThanOrEqual(10);
    expect(await reownAll(url, 'atomo_owned')).toBeGreaterThanOrEqual(8);
    expect(await foreignOwned(url, 'atomo_owned')).toEqual([]);
  });
});


describe('a project database cannot run its code as the superuser the daemon backs up and re-owns with', () => {
  const evil = databaseNames('evil');
  const evilPassword = generatePassword();
  const evilUrl = () => instanceDatabaseUrl(pgs.url, evil, evilPassword);

  beforeAll(async () => {
    await ensureDatabase(pgs.url, evil, evilPassword);
    // What a hostile project can do with its own role: shadow the catalog names the daemon's queries use, and put
    // its schema first on every session's search_path. Whoever runs steal() is written down.
    await q(evilUrl(), `
      CREATE TABLE hits (who text);
      GRANT INSERT ON hits TO PUBLIC;
      CREATE FUNCTION steal() RETURNS boolean LANGUAGE sql AS $$ INSERT INTO public.hits SELECT current_user; SELECT true $$;
      CREATE VIEW pg_class AS SELECT c.* FROM pg_catalog.pg_class c WHERE public.steal();
      CREATE VIEW pg_namespace AS SELECT n.* FROM pg_catalog.pg_namespace n WHERE public.steal();
      CREATE FUNCTION quote_ident(name) RETURNS text LANGUAGE sql AS $$ SELECT CASE WHEN public.steal() THEN pg_catalog.quote_ident($1::text) END $$;
      CREATE TABLE data (x int);
      ALTER DATABASE ${evil.database} SET search_path = public, pg_catalog;
    `);
  });

  it('a backup and a re-own leave no trace of the superuser in steal()', async () => {
    await backupDatabase(pgs.url, evil, join(dir, 'evil'), { kind: 'manual' });
    await q(adminOn(evil.database), 'CREATE TABLE owned_by_admin (y int)'); // something for reownAll to give back
    await foreignOwned(adminOn(evil.database), evil.role);
    await reownAll(adminOn(evil.database), evil.role);
    const who = (await q(evilUrl(), 'SELECT DISTINCT who FROM hits')).map((r) => r.who);
    expect(who.filter((w) => w !== evil.role)).toEqual([]);
  });
});
