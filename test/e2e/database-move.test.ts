// Moving a project's database between two real Postgres clusters with a real daemon: fleet.yaml names the servers,
// the manifest says `database: { server: hot }`, the daemon stops the instance, dumps, restores on hot, switches
// DATABASE_URL and starts the instance again; the old copy stays on main until `dropOld: true`. Failures (target
// unreachable, restore failing on the target) leave the project serving on main, and the next passes retry.
import { afterAll, beforeAll, expect, it, onTestFinished } from 'vitest';
import { basename, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { stringify } from 'yaml';
import { createLogger } from '../../daemon/log.ts';
import { checkFleetConfig } from '../../daemon/manifest/fleet-config.ts';
import { listBackups } from '../../daemon/backup/layout.ts';
import { Registry } from '../../daemon/registry/registry.ts';
import { createProcessDriver } from '../../daemon/drivers/process.ts';
import { databaseNames, ensureDatabase, instanceDatabaseUrl } from '../../daemon/provision/database.ts';
import { registryPlan } from '../../scripts/commands/plan.ts';
import backupCommand from '../../scripts/commands/backup.ts';
import secretsCommand from '../../scripts/commands/secrets.ts';
import { pgBin } from '../../daemon/backup/archive.ts';
import { createSecretStore } from '../../daemon/secrets/index.ts';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { DEFAULT_FLEET_YAML, writeProject } from '../harness/git.ts';
import { startPostgres, type TestPostgres } from '../harness/postgres.ts';
import { freePort } from '../harness/ports.ts';

let f: TestFleet;
let hot: TestPostgres;
const FLEET_YAML = DEFAULT_FLEET_YAML.replace('  admin: embedded\n', '  admin: embedded\n  servers:\n    hot: /atomo/fleet/pg-hot\n    down: /atomo/fleet/pg-down\n');
const base = { resources: { connections: 7 } };

async function query(url: string, text: string, params: unknown[] = []): Promise<any[]> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    return (await c.query(text, params)).rows;
  } finally {
    await c.end();
  }
}
const onDb = (url: string, db: string) => Object.assign(new URL(url), { pathname: `/${db}` }).toString();
// Read through the fleet's own store: also while no daemon runs.
const roleUrl = () => createSecretStore(checkFleetConfig(FLEET_YAML).config!.secretStore, { stateDir: f.stateDir, log: createLogger({ level: 'silent' }) }).get('/atomo/notes/DATABASE_URL');
const rows = async (url: string) => (await query(url, 'SELECT id FROM widgets ORDER BY id')).map((r) => r.id);
const hasDb = async (url: string) => (await query(url, "SELECT 1 FROM pg_database WHERE datname = 'atomo_notes'")).length === 1;
const events = async () => (await f.running!.daemon.registry.events('notes')).map((e) => ({ action: e.action, detail: e.detail as Record<string, any> }));
const commitNotes = (database?: object) => {
  writeProject(f.repo, 'notes', { manifest: { ...base, database } });
  return f.repo.commit(`notes: database ${JSON.stringify(database ?? null)}`);
};
const backups = (kind: string) => listBackups(`${f.stateDir}/backups`, 'notes').filter((b) => b.kind === kind);
const dumpData = (file: string) => execFileSync(pgBin('pg_restore'), ['--data-only', '-f', '-', file], { encoding: 'utf8' });
const ready = () => expect.poll(async () => (await f.get('notes', '/ready').catch(() => ({ status: 0 }))).status, { timeout: 20_000 }).toBe(200);

beforeAll(async () => {
  hot = await startPostgres();
  f = await createFleet();
  f.repo.write('fleet.yaml', FLEET_YAML);
  writeProject(f.repo, 'notes', { manifest: base });
  const c = f.repo.commit('notes on main');
  await f.boot({ fleet: checkFleetConfig(FLEET_YAML).config! });
  await f.running!.secrets.put('/atomo/fleet/pg-hot', hot.url);
  await f.running!.secrets.put('/atomo/fleet/pg-down', `postgres://postgres:nothing@127.0.0.1:${await freePort()}/postgres`);
  await f.until('notes', (p) => p.status === 'running' && p.appliedCommit === c);
  await query(await roleUrl(), `INSERT INTO widgets (id, data) VALUES ('a', '{}'), ('b', '{}')`);
}, 120_000);
afterAll(async () => {
  await f?.destroy();
  await hot?.destroy();
});

it('a new project lives on main; the registry says so', async () => {
  expect((await f.project('notes'))!.databaseServer).toBe('main');
  expect(new URL(await roleUrl()).port).toBe(new URL(f.pg.url).port);
});

it('a move to an unreachable server fails before anything stops: the project serves on main as before', async () => {
  const upstream = (await f.project('notes'))!.upstream;
  commitNotes({ server: 'down' });
  await expect.poll(async () => (await events()).find((e) => e.action === 'database_move_failed')?.detail.message, { timeout: 30_000 })
    .toMatch(/^database move main → down failed; notes stays on main, nothing was lost: .*unreachable/);
  expect((await f.project('notes'))!).toMatchObject({ databaseServer: 'main', oldDatabaseServer: null, upstream });
  expect(await rows(await roleUrl())).toEqual(['a', 'b']);
  await ready();
  expect(backups('pre-move')).toEqual([]);
  const c = commitNotes(undefined);
  await f.until('notes', (p) => p.appliedCommit === c && p.status === 'running');
});

it('a restore that fails on the target: notes starts again on main with its data; the next pass retries and moves it', async () => {
  // An extension only a superuser may create: the project's role cannot restore it on hot.
  await query(onDb(f.pg.url, 'atomo_notes'), 'CREATE EXTENSION dblink');
  const dumpsBefore = listBackups(`${f.stateDir}/backups`, 'notes').length;
  commitNotes({ server: 'hot' });
  await expect.poll(async () => (await events()).find((e) => e.action === 'database_move_failed' && e.detail.to === 'hot')?.detail.message, { timeout: 60_000 })
    .toMatch(/^database move main → hot failed; notes stays on main, nothing was lost: .*restore of atomo_notes/);
  expect((await f.project('notes'))!.databaseServer).toBe('main');
  expect(new URL(await roleUrl()).port).toBe(new URL(f.pg.url).port);
  expect(await rows(await roleUrl())).toEqual(['a', 'b']);
  // A failed try leaves no dump behind (the source was never changed): retries that keep failing cannot fill the
  // disk every project's backups share.
  expect(listBackups(`${f.stateDir}/backups`, 'notes')).toHaveLength(dumpsBefore);
  await ready();
  // Fixed on main: a later retry (backoff) moves it.
  await query(onDb(f.pg.url, 'atomo_notes'), 'DROP EXTENSION dblink');
  await f.until('notes', (p) => p.databaseServer === 'hot' && p.status === 'running', 60_000);
});

it('after the move: the rows are on hot, the instance uses the new DATABASE_URL, the old database is still on main', async () => {
  const url = await roleUrl();
  expect(new URL(url).port).toBe(new URL(hot.url).port);
  expect(await rows(url)).toEqual(['a', 'b']);
  await ready();
  await expect.poll(async () => (await query(hot.url, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'atomo_notes' AND datname = 'atomo_notes'"))[0].n, { timeout: 20_000 })
    .toBeGreaterThan(0);
  expect(await hasDb(f.pg.url)).toBe(true);
  expect((await f.project('notes'))!.oldDatabaseServer).toBe('main');
  // The role on hot has what it had on main, nothing more.
  const [role] = await query(hot.url, `SELECT rolconnlimit, rolsuper, rolcreatedb, rolcreaterole, rolinherit, shobj_description(oid, 'pg_authid') AS marker
    FROM pg_roles WHERE rolname = 'atomo_notes'`);
  expect(role).toEqual({ rolconnlimit: 7, rolsuper: false, rolcreatedb: false, rolcreaterole: false, rolinherit: true, marker: 'atomo-fleet project notes' });
  expect((await query(hot.url, "SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = 'atomo_notes'"))[0].owner).toBe('atomo_notes');
  expect(await query(hot.url, "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = 'atomo_notes'")).toEqual([]);
  const moved = (await events()).find((e) => e.action === 'database_moved')!;
  expect(moved.detail).toMatchObject({ from: 'main', to: 'hot', backup: expect.stringMatching(/-pre-move-[0-9a-f]{12}\.dump$/) });
  expect(JSON.stringify(await events())).not.toContain(new URL(url).password);
  expect(listBackups(`${f.stateDir}/backups`, 'notes').some((b) => b.kind === 'pre-move')).toBe(true);
});

it('without a daemon, fleet backup and fleet secrets rotate DATABASE_URL work on hot, where notes lives (not on the copy on main)', async () => {
  await query(onDb(hot.url, 'atomo_notes'), `INSERT INTO widgets (id, data) VALUES ('only-on-hot', '{}')`);
  onTestFinished(() => query(onDb(hot.url, 'atomo_notes'), `DELETE FROM widgets WHERE id = 'only-on-hot'`).then(() => undefined));
  await f.stopDaemon();
  // --postgres is the default server's admin URL, as for every other project: notes' own server comes from fleet.yaml.
  const values = { postgres: f.pg.url, 'state-dir': f.stateDir, format: 'json' };
  const before = backups('manual').length;
  expect(await backupCommand.run({ values: { ...values, 'registry-url': f.registryUrl }, positionals: ['notes'], repo: f.repo.dir })).toBe(0);
  const manual = backups('manual');
  expect(manual).toHaveLength(before + 1);
  expect(dumpData(manual.at(-1)!.file)).toContain('only-on-hot');
  // The role's password changes on hot (the new DATABASE_URL connects there); the old copy's role on main is left.
  const old = await roleUrl();
  expect(await secretsCommand.run({ values: { ...values, registry: f.registryUrl }, positionals: ['rotate', 'notes', 'DATABASE_URL'], repo: f.repo.dir })).toBe(0);
  const rotated = await roleUrl();
  expect(rotated).not.toBe(old);
  expect(new URL(rotated).port).toBe(new URL(hot.url).port);
  expect(await rows(rotated)).toEqual(['a', 'b', 'only-on-hot']);
  const onMainWithOld = Object.assign(new URL(old), { port: new URL(f.pg.url).port }).toString();
  expect(await rows(onMainWithOld)).toEqual(['a', 'b']);
}, 60_000);

it('dropOld that fails after its backup: retried with backoff, one backup and one event, not one per pass', async () => {
  await f.stopDaemon();
  commitNotes({ server: 'hot', dropOld: true });
  // A template database cannot be dropped; pg_dump reads it as any other.
  await query(f.pg.url, 'ALTER DATABASE atomo_notes IS_TEMPLATE true');
  const before = backups('pre-delete').length;
  try {
    await f.boot({ fleet: checkFleetConfig(FLEET_YAML).config!, backoff: { baseMs: 600_000, capMs: 600_000, stallAfter: 3, stableMs: 5000 } });
    await expect.poll(async () => (await events()).filter((e) => e.action === 'database_old_drop_failed').length, { timeout: 30_000 }).toBe(1);
    // More passes: the drop waits for its backoff, nothing more is dumped or recorded.
    for (let i = 0; i < 3; i++) await f.running!.daemon.syncNow();
    expect(backups('pre-delete')).toHaveLength(before + 1);
    const failed = (await events()).filter((e) => e.action === 'database_old_drop_failed');
    expect(failed).toHaveLength(1);
    expect(failed[0].detail).toMatchObject({ server: 'main', message: expect.stringMatching(/^dropping the old copy of atomo_notes on main failed, it is kept and retried with backoff: .*template/) });
    const all = await events();
    expect(all.slice(all.findIndex((e) => e.action === 'database_old_drop_failed')).filter((e) => e.action === 'error')).toHaveLength(1);
    expect((await f.project('notes'))!).toMatchObject({ databaseServer: 'hot', oldDatabaseServer: 'main' });
    expect(await hasDb(f.pg.url)).toBe(true);
    await ready();
  } finally {
    await query(f.pg.url, 'ALTER DATABASE atomo_notes IS_TEMPLATE false');
  }
}, 90_000);

it('dropOld: the plan shows the drop in bold; the daemon drops the copy on main after a backup; notes serves on hot', async () => {
  await f.stopDaemon();
  const registry = new Registry(f.registryUrl, createLogger({ level: 'silent' }));
  try {
    const { output } = await registryPlan(f.repo.dir, registry, 'HEAD', 'markdown');
    expect(output).toContain('| `!` | notes | **the old copy of atomo_notes on main is DROPPED after a backup (database.dropOld: true) (needs care)** |');
  } finally {
    await registry.close();
  }
  await f.boot({ fleet: checkFleetConfig(FLEET_YAML).config! });
  await f.until('notes', (p) => p.oldDatabaseServer === null && p.status === 'running', 60_000);
  expect(await hasDb(f.pg.url)).toBe(false);
  expect(await query(f.pg.url, "SELECT 1 FROM pg_roles WHERE rolname = 'atomo_notes'")).toEqual([]);
  expect(await hasDb(hot.url)).toBe(true);
  expect(await rows(await roleUrl())).toEqual(['a', 'b']);
  await ready();
  const dropped = (await events()).find((e) => e.action === 'database_old_dropped')!;
  expect(dropped.detail).toMatchObject({ server: 'main', dropped: 'atomo_notes', backup: expect.stringMatching(/-pre-delete-/) });
  expect(stringify(dropped.detail)).not.toContain(new URL(hot.url).password);
});

it('a daemon killed mid-move (target restored, DATABASE_URL switched, registry not yet written): the next daemon converges', async () => {
  const secrets = f.running!.secrets;
  await f.stopDaemon();
  // What a daemon killed between steps 5 and 6 of a move hot → main leaves: the instance stopped, a copy on main
  // (here a stale one), DATABASE_URL on main, the registry still on hot.
  await createProcessDriver({ stateDir: join(f.stateDir, 'instances'), log: createLogger({ level: 'silent' }) }).stop('notes');
  const password = decodeURIComponent(new URL(await secrets.get('/atomo/notes/DATABASE_URL')).password);
  await ensureDatabase(f.pg.url, databaseNames('notes'), password, { connectionLimit: 7 });
  const onMain = instanceDatabaseUrl(f.pg.url, databaseNames('notes'), password);
  await query(onMain, "CREATE TABLE widgets (id text PRIMARY KEY, data jsonb); INSERT INTO widgets VALUES ('stale', '{}')");
  await secrets.put('/atomo/notes/DATABASE_URL', onMain);
  const c = commitNotes({ server: 'main' });
  await f.boot({ fleet: checkFleetConfig(FLEET_YAML).config! });
  await f.until('notes', (p) => p.databaseServer === 'main' && p.oldDatabaseServer === 'hot' && p.status === 'running' && p.appliedCommit === c, 60_000);
  expect(await rows(await roleUrl())).toEqual(['a', 'b']);
  expect(new URL(await roleUrl()).port).toBe(new URL(f.pg.url).port);
  await ready();
  expect(await hasDb(hot.url)).toBe(true);
});

it('a move and a restore request in the same pass: the move first, then the restore onto hot, where notes lives after the pass', async () => {
  // notes lives on main; the copy the last move left on hot is dropped first (a move needs no kept copy).
  const dropped = commitNotes({ server: 'main', dropOld: true });
  await f.until('notes', (p) => p.appliedCommit === dropped && p.oldDatabaseServer === null && p.status === 'running', 60_000);
  // A row only main has, and a backup without it: the newest pre-move dump (the move hot → main above, rows a and b).
  await query(await roleUrl(), `INSERT INTO widgets (id, data) VALUES ('z', '{}')`);
  const backup = backups('pre-move')[0];
  expect(dumpData(backup.file)).not.toMatch(/^z\t/m);
  await f.stopDaemon();
  const c = commitNotes({ server: 'hot' });
  // What `fleet restore notes --from FILE` records (written here while no daemon runs, so the next pass sees both).
  const [request] = await query(f.registryUrl, `INSERT INTO project_requests (project_id, kind, args, requested_by) VALUES ('notes', 'restore', $1, 'alice') RETURNING id`,
    [JSON.stringify({ file: backup.file, backup: basename(backup.file) })]);
  await f.boot({ fleet: checkFleetConfig(FLEET_YAML).config! });
  const outcome = async () => (await query(f.registryUrl, 'SELECT outcome FROM project_requests WHERE id = $1', [request.id]))[0].outcome;
  await expect.poll(outcome, { timeout: 60_000 }).not.toBeNull();
  expect(await outcome()).toMatchObject({ ok: true, message: expect.stringMatching(/^restored atomo_notes from /) });
  await f.until('notes', (p) => p.appliedCommit === c && p.status === 'running', 60_000);
  expect((await f.project('notes'))!).toMatchObject({ databaseServer: 'hot', oldDatabaseServer: 'main' });
  expect(new URL(await roleUrl()).port).toBe(new URL(hot.url).port);
  expect(await rows(await roleUrl())).toEqual(['a', 'b']);
  // The copy the move left on main is what notes held before the restore: the restore did not land there.
  expect(await rows(onDb(f.pg.url, 'atomo_notes'))).toEqual(['a', 'b', 'z']);
  expect((await events()).map((e) => e.action).filter((a) => a === 'database_moved' || a === 'restore').slice(-2)).toEqual(['database_moved', 'restore']);
  await ready();
}, 120_000);

it('a commit that moves and says dropOld at once keeps the copy it leaves until a later commit', async () => {
  // notes lives on hot, its last move left a copy on main (an earlier commit): that one goes, the new one stays.
  const c = commitNotes({ server: 'main', dropOld: true });
  await f.until('notes', (p) => p.appliedCommit === c && p.databaseServer === 'main' && p.oldDatabaseServer === 'hot' && p.status === 'running', 60_000);
  for (let i = 0; i < 2; i++) await f.running!.daemon.syncNow();
  expect(await hasDb(hot.url)).toBe(true);
  expect((await f.project('notes'))!.oldDatabaseServer).toBe('hot');
  // The next commit (back to hot, still dropOld) drops the copy on hot first, then moves; main's copy is kept.
  const later = commitNotes({ server: 'hot', dropOld: true });
  await f.until('notes', (p) => p.appliedCommit === later && p.databaseServer === 'hot' && p.oldDatabaseServer === 'main' && p.status === 'running', 60_000);
  // Each of the two commits dropped a copy from before it and moved. Within one pass the move's event is written at
  // once, the drop's with the pass's other events: count, not order.
  expect((await events()).map((e) => e.action).filter((a) => a === 'database_moved' || a === 'database_old_dropped').slice(-4).sort())
    .toEqual(['database_moved', 'database_moved', 'database_old_dropped', 'database_old_dropped']);
  expect(await hasDb(f.pg.url)).toBe(true);
  await ready();
}, 120_000);

it('a delete with dropDatabase of a moved project drops both copies, each after its own backup', async () => {
  const before = backups('pre-delete').length;
  writeProject(f.repo, 'notes', { manifest: { ...base, database: { server: 'hot' }, state: 'deleted', deletion: { confirm: 'notes', dropDatabase: true } } });
  f.repo.commit('notes: deleted, database dropped');
  await f.until('notes', (p) => p.status === 'deleted', 60_000);
  expect(await hasDb(hot.url)).toBe(false);
  expect(await hasDb(f.pg.url)).toBe(false);
  for (const url of [hot.url, f.pg.url]) expect(await query(url, "SELECT 1 FROM pg_roles WHERE rolname = 'atomo_notes'")).toEqual([]);
  expect(backups('pre-delete')).toHaveLength(before + 2);
  const deleted = (await events()).filter((e) => e.action === 'delete').at(-1)!;
  expect(deleted.detail).toMatchObject({ dropped: 'atomo_notes', oldCopyDropped: 'atomo_notes on main', backup: expect.stringContaining('-pre-delete-'), oldCopyBackup: expect.stringContaining('-pre-delete-') });
  expect((await f.project('notes'))!.oldDatabaseServer).toBeNull();
}, 90_000);
