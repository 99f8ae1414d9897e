// Guarded delete: a database is dropped only on a confirmed manifest change, and only after a fresh backup.
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { execFileSync } from 'node:child_process';
import { pgBin } from '../../daemon/backup/archive.ts';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { createProcessDriver } from '../../daemon/drivers/process.ts';
import { createLogger } from '../../daemon/log.ts';
import { writeProject } from '../harness/git.ts';

let f: TestFleet;
/** Projects whose driver state was removed (Driver.remove: a swarm service and its configs; a no-op here). */
const removed: string[] = [];

async function adminQuery(sql: string, params: unknown[] = []) {
  const c = new pg.Client(f.pg.url);
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  f = await createFleet();
  for (const id of ['keep', 'drop', 'guard']) writeProject(f.repo, id);
  const c1 = f.repo.commit('three projects');
  const real = createProcessDriver({ stateDir: join(f.stateDir, 'instances'), log: createLogger({ level: 'silent' }) });
  await f.boot({ driver: { ...real, name: real.name, remove: async (id) => { removed.push(id); } } });
  for (const id of ['keep', 'drop', 'guard']) await f.until(id, (p) => p.status === 'running' && p.appliedCommit === c1);
  const url = await f.running!.secrets.get('/atomo/drop/DATABASE_URL');
  const c = new pg.Client(url);
  await c.connect();
  await c.query(`INSERT INTO widgets (id, data) VALUES ('w1', '{"name":"precious"}')`);
  await c.end();
});
afterAll(async () => f?.destroy());

it('state: deleted without dropDatabase stops the instance and keeps the database', async () => {
  writeProject(f.repo, 'keep', { manifest: { state: 'deleted', deletion: { confirm: 'keep' } } });
  const c = f.repo.commit('delete keep, keep its data');
  const rec = await f.until('keep', (p) => p.status === 'deleted' && p.appliedCommit === c);
  expect(rec.upstream).toBeNull();
  expect(await adminQuery("SELECT 1 FROM pg_database WHERE datname = 'atomo_keep'")).toHaveLength(1);
  expect((await f.events('keep')).filter((e) => e.action === 'delete')).toHaveLength(1);
  expect(removed).toEqual(['keep']); // what the driver keeps for it goes too, once
});

it('dropDatabase: true takes a fresh backup, then drops database, role and generated secrets', async () => {
  writeProject(f.repo, 'drop', { manifest: { state: 'deleted', deletion: { confirm: 'drop', dropDatabase: true } } });
  const c = f.repo.commit('delete drop with its database');
  await f.until('drop', (p) => p.status === 'deleted' && p.appliedCommit === c);
  expect(await adminQuery("SELECT 1 FROM pg_database WHERE datname = 'atomo_drop'")).toHaveLength(0);
  expect(await adminQuery("SELECT 1 FROM pg_roles WHERE rolname = 'atomo_drop'")).toHaveLength(0);
  expect(await f.running!.secrets.has('/atomo/drop/DATABASE_URL')).toBe(false);
  const [event] = (await f.running!.daemon.registry.events('drop')).filter((e) => e.action === 'delete');
  const backup = String(event.detail?.backup);
  expect(execFileSync(pgBin('pg_restore'), ['--file=-', backup], { encoding: 'utf8' })).toContain('precious'); // custom format: compressed
  // Other projects are untouched.
  expect((await f.project('guard'))!.status).toBe('running');
  expect(removed).toEqual(['keep', 'drop']);
});

it('a failed backup keeps the database and says why', async () => {
  // The backup folder cannot be created: a file stands where it should be.
  writeFileSync(join(f.stateDir, 'backups-blocked'), 'x');
  await f.stopDaemon();
  await f.boot({ backupDir: join(f.stateDir, 'backups-blocked', 'sub') });
  writeProject(f.repo, 'guard', { manifest: { state: 'deleted', deletion: { confirm: 'guard', dropDatabase: true } } });
  const c = f.repo.commit('delete guard');
  const rec = await f.until('guard', (p) => p.observedCommit === c && /backup of atomo_guard failed, database kept/.test(p.lastError ?? ''));
  expect(rec.status).not.toBe('deleted');
  expect(await adminQuery("SELECT 1 FROM pg_database WHERE datname = 'atomo_guard'")).toHaveLength(1);
});

it('a failed guarded delete is retried with backoff, not on every pass', async () => {
  // Still the blocked backup folder of the test above: every attempt fails.
  const attempts = () => f.logs.map((l) => JSON.parse(l) as { project?: string; msg: string })
    .filter((l) => l.project === 'guard' && l.msg === 'project did not converge').length;
  const startPasses = f.running!.daemon.passes;
  const startAttempts = attempts();
  await expect.poll(() => f.running!.daemon.passes, { timeout: 30_000 }).toBeGreaterThanOrEqual(startPasses + 16);
  const tried = attempts() - startAttempts;
  // Harness backoff: 300 ms doubling to a 2 s cap; the passes run every 300 ms.
  expect(tried).toBeGreaterThanOrEqual(1);
  expect(tried).toBeLessThanOrEqual(8);
  expect(readdirSync(join(f.stateDir)).filter((n) => n.startsWith('atomo_guard'))).toEqual([]);
});
