// Scheduled backups: pg_dump -Fc on the manifest's cron schedule, pruned to its retention (scheduled dumps only);
// the registry on fleet.yaml's own schedule.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readdirSync, existsSync, statSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { DEFAULT_FLEET_YAML, writeProject } from '../harness/git.ts';
import { backupName, listBackups } from '../../daemon/backup/layout.ts';
import { pgBin } from '../../daemon/backup/archive.ts';

let f: TestFleet;
const backupDir = () => join(f.stateDir, 'backups');
const dumps = () => listBackups(backupDir(), 'notes').filter((b) => b.kind === 'scheduled');
/** The SQL a dump holds (custom format is compressed: pg_restore prints it). */
const sqlOf = (file: string) => execFileSync(pgBin('pg_restore'), ['--file=-', file], { encoding: 'utf8' });

beforeAll(async () => {
  f = await createFleet();
  writeProject(f.repo, 'notes', { manifest: { backup: { schedule: '* * * * * *', retention: 2 } } });
  writeProject(f.repo, 'plain');
  const c = f.repo.commit('notes with backups every second');
  await f.boot();
  await f.until('notes', (p) => p.status === 'running' && p.appliedCommit === c);
  const url = await f.running!.secrets.get('/atomo/notes/DATABASE_URL');
  const client = new pg.Client(url);
  await client.connect();
  await client.query(`INSERT INTO widgets (id, data) VALUES ('n1', '{"name":"remember me"}')`);
  await client.end();
});
afterAll(async () => f?.destroy());

it('dumps the project database on schedule and keeps only the newest `retention` scheduled dumps', async () => {
  // A manual dump already there is never pruned by the schedule's retention.
  await expect.poll(() => dumps().length, { timeout: 20_000 }).toBeGreaterThanOrEqual(1);
  const manual = join(backupDir(), 'notes', backupName(new Date('2020-01-01T00:00:00Z'), 'manual'));
  copyFileSync(dumps()[0].file, manual);
  await expect.poll(async () => (await f.events('notes')).filter((e) => e.action === 'backup').length, { timeout: 20_000 }).toBeGreaterThanOrEqual(4);
  expect(dumps().length).toBeLessThanOrEqual(2);
  expect(existsSync(manual)).toBe(true);
  const newest = dumps()[0];
  expect(sqlOf(newest.file)).toContain('remember me');
  expect(statSync(newest.file).mode & 0o777).toBe(0o600);
  expect(newest.commit).toBe(f.repo.head().slice(0, 12));
  expect(f.running!.daemon.backups.scheduled()).toEqual(['notes']);
});

it('backs the registry up on fleet.yaml\'s own schedule, and stops when the block goes', async () => {
  f.repo.write('fleet.yaml', `${DEFAULT_FLEET_YAML}backups:\n  registry: { schedule: "* * * * * *", retention: 2 }\n`);
  f.repo.commit('registry backups every second');
  await expect.poll(() => f.running!.daemon.backups.scheduled(), { timeout: 20_000 }).toContain('_registry');
  await expect.poll(() => listBackups(backupDir(), '_registry').length, { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
  await expect.poll(async () => (await f.running!.daemon.registry.getState<{ ok: boolean }>('registry_backup'))?.ok, { timeout: 20_000 }).toBe(true);
  const [newest] = listBackups(backupDir(), '_registry');
  expect(statSync(newest.file).mode & 0o777).toBe(0o600);
  expect(sqlOf(newest.file)).toContain('CREATE TABLE public.projects');
  await expect.poll(() => listBackups(backupDir(), '_registry').length, { timeout: 20_000 }).toBeLessThanOrEqual(2);
  f.repo.write('fleet.yaml', DEFAULT_FLEET_YAML);
  f.repo.commit('no registry backups');
  await expect.poll(() => f.running!.daemon.backups.scheduled(), { timeout: 20_000 }).not.toContain('_registry');
});

it('unschedules when the backup block goes away', async () => {
  writeProject(f.repo, 'notes', { manifest: { backup: undefined } });
  const c = f.repo.commit('no more backups');
  await f.until('notes', (p) => p.appliedCommit === c);
  await expect.poll(() => f.running!.daemon.backups.scheduled()).toEqual([]);
});

it('a failed scheduled backup is retried with backoff until it succeeds, leaving no empty file', async () => {
  // Take the database away from under the schedule: the role cannot connect, every dump fails.
  const admin = new pg.Client(f.pg.url);
  await admin.connect();
  await admin.query('ALTER DATABASE atomo_plain ALLOW_CONNECTIONS false');
  const scheduler = f.running!.daemon.backups;
  const failedBefore = (await f.events('plain')).filter((e) => e.action === 'backup_failed').length;
  expect(await scheduler.run('plain', 2)).toBeNull();
  // Retries follow on their own (backoff), not only at the next cron tick, and each failure is an event.
  await expect.poll(async () => (await f.events('plain')).filter((e) => e.action === 'backup_failed').length, { timeout: 20_000 })
    .toBeGreaterThanOrEqual(failedBefore + 2);
  const dir = join(backupDir(), 'plain');
  expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  await admin.query('ALTER DATABASE atomo_plain ALLOW_CONNECTIONS true');
  await admin.end();
  await expect.poll(async () => (await f.events('plain')).filter((e) => e.action === 'backup').length, { timeout: 20_000 }).toBeGreaterThanOrEqual(1);
  expect(readdirSync(dir).filter((n) => n.endsWith('.dump'))).toHaveLength(1);
});
