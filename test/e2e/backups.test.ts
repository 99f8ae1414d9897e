// Scheduled backups: pg_dump on the manifest's cron schedule, pruned to its retention.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';

let f: TestFleet;
const dumps = () => {
  const dir = join(f.stateDir, 'backups', 'notes');
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.sql')) : [];
};

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

it('dumps the project database on schedule and keeps only the newest `retention` files', async () => {
  await expect.poll(async () => (await f.events('notes')).filter((e) => e.action === 'backup').length, { timeout: 20_000 }).toBeGreaterThanOrEqual(4);
  expect(dumps().length).toBeLessThanOrEqual(2);
  const newest = dumps().sort().at(-1)!;
  expect(readFileSync(join(f.stateDir, 'backups', 'notes', newest), 'utf8')).toContain('remember me');
  expect(f.running!.daemon.backups.scheduled()).toEqual(['notes']);
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
  const dir = join(f.stateDir, 'backups', 'plain');
  expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  await admin.query('ALTER DATABASE atomo_plain ALLOW_CONNECTIONS true');
  await admin.end();
  await expect.poll(async () => (await f.events('plain')).filter((e) => e.action === 'backup').length, { timeout: 20_000 }).toBeGreaterThanOrEqual(1);
  expect(readdirSync(dir).filter((n) => n.endsWith('.sql'))).toHaveLength(1);
});
