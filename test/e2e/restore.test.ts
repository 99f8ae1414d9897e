// `fleet backup`, `fleet backups` and `fleet restore` against a real daemon: backup, change data, restore --latest,
// and the data is back, the instance runs again, and `restore` is an event. The daemon owns the instance, so the
// CLI records a request and waits for the daemon's pass to carry it out.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';

const run = promisify(execFile);
const FLEET = resolve(import.meta.dirname, '../../scripts/fleet.js');
let f: TestFleet;
let roleUrl: string;

const fleet = (...args: string[]) => run('node', [FLEET, ...args, '--repo', f.repo.dir, '--state-dir', f.stateDir], { env: { ...process.env, FLEET_REGISTRY_URL: f.registryUrl } });
const fails = (...args: string[]) => fleet(...args).then((r) => ({ code: 0, ...r }), (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }));

async function notes(): Promise<string[]> {
  const c = new pg.Client(roleUrl);
  await c.connect();
  try {
    return (await c.query("SELECT id FROM widgets ORDER BY id")).rows.map((r) => r.id);
  } finally {
    await c.end();
  }
}

async function sql(text: string): Promise<void> {
  const c = new pg.Client(roleUrl);
  await c.connect();
  await c.query(text).finally(() => c.end());
}

const openRequests = async () => {
  const c = new pg.Client(f.registryUrl);
  await c.connect();
  try {
    return (await c.query('SELECT id FROM project_requests WHERE done_at IS NULL')).rows;
  } finally {
    await c.end();
  }
};

beforeAll(async () => {
  f = await createFleet();
  writeProject(f.repo, 'notes');
  const c = f.repo.commit('notes');
  await f.boot();
  await f.until('notes', (p) => p.status === 'running' && p.appliedCommit === c);
  roleUrl = await f.running!.secrets.get('/atomo/notes/DATABASE_URL');
  await sql(`INSERT INTO widgets (id, data) VALUES ('kept', '{"name":"from before the backup"}')`);
});
afterAll(async () => f?.destroy());

it('fleet backup takes a manual dump; fleet backups lists it with time, size, kind and commit', async () => {
  const { stdout } = await fleet('backup', 'notes', '--postgres', f.pg.url, '--registry-url', f.registryUrl);
  expect(stdout).toMatch(/^backup of notes written: .*\/backups\/notes\/\S+-manual-[0-9a-f]{12}\.dump \(\d/);
  const list = JSON.parse((await fleet('backups', 'notes', '--format', 'json')).stdout);
  expect(list).toHaveLength(1);
  expect(list[0]).toMatchObject({ project: 'notes', kind: 'manual', commit: f.repo.head().slice(0, 12) });
  expect(list[0].size).toBeGreaterThan(0);
  const table = (await fleet('backups', 'notes')).stdout;
  expect(table).toMatch(/^TIME \(UTC\)\s+KIND\s+SIZE\s+COMMIT\s+FILE\n\S+Z\s+manual\s+\d/);
  expect((await f.events('notes')).filter((e) => e.action === 'backup')).toEqual([{ action: 'backup', actor: userInfo().username, commit: f.repo.head() }]);
});

it('fleet backup --registry dumps the registry', async () => {
  const { stdout } = await fleet('backup', '--registry', '--registry-url', f.registryUrl);
  expect(stdout).toMatch(/^backup of the registry written: .*\/backups\/_registry\/\S+-manual\.dump/);
  expect(JSON.parse((await fleet('backups', '--registry', '--format', 'json')).stdout)).toHaveLength(1);
});

it('without --yes and without a terminal, fleet restore refuses and asks nothing of the daemon', async () => {
  const r = await fails('restore', 'notes', '--latest');
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/no terminal to ask; pass --yes/);
  expect(await openRequests()).toEqual([]);
});

it('restore --latest --yes: the data is back, the instance runs again, and `restore` is an event', async () => {
  await sql(`DELETE FROM widgets WHERE id = 'kept'; INSERT INTO widgets (id, data) VALUES ('later', '{}')`);
  expect(await notes()).toEqual(['later']);
  const before = (await f.project('notes'))!;
  const { stdout } = await fleet('restore', 'notes', '--latest', '--yes');
  expect(stdout).toMatch(/^restored atomo_notes from \S+-manual-[0-9a-f]{12}\.dump; what it replaced is saved as \S+-pre-restore-\S+\.dump; notes is running again/);
  expect(await notes()).toEqual(['kept']);
  const after = await f.until('notes', (p) => p.status === 'running' && p.lastHealth?.ok === true);
  expect(after.upstream).toBe(before.upstream);
  // The instance was started again by the restore; it answers once it has booted.
  await expect.poll(async () => (await f.get('notes', '/ready').catch(() => ({ status: 0 }))).status, { timeout: 15_000 }).toBe(200);
  const events = await f.running!.daemon.registry.events('notes');
  const restore = events.find((e) => e.action === 'restore')!;
  expect(restore.actor).toBe(userInfo().username);
  expect(restore.detail).toMatchObject({ ok: true, started: true, backup: expect.stringMatching(/-manual-/) });
  expect(await openRequests()).toEqual([]);
  const kinds = JSON.parse((await fleet('backups', 'notes', '--format', 'json')).stdout).map((b: { kind: string }) => b.kind);
  expect(kinds.sort()).toEqual(['manual', 'pre-restore']);
});

it('a restore that fails halfway changes nothing, starts the instance again and says why (exit 1)', async () => {
  const [latest] = JSON.parse((await fleet('backups', 'notes', '--format', 'json')).stdout).filter((b: { kind: string }) => b.kind === 'manual');
  const bytes = Buffer.from(readFileSync(latest.file));
  bytes.fill(0x55, bytes.length - 120, bytes.length - 20);
  const broken = join(f.stateDir, 'broken.dump');
  writeFileSync(broken, bytes);
  await sql(`INSERT INTO widgets (id, data) VALUES ('newer', '{}')`);
  const r = await fails('restore', 'notes', '--from', broken, '--yes');
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/restore of notes failed: restore of atomo_notes from broken\.dump failed; the database was not changed/);
  expect(await notes()).toEqual(['kept', 'newer']);
  await f.until('notes', (p) => p.status === 'running' && p.lastHealth?.ok === true);
  expect((await f.running!.daemon.registry.events('notes')).some((e) => e.action === 'restore_failed')).toBe(true);
});

it('with no daemon running, fleet restore says so (exit 1) and leaves no request behind', async () => {
  await f.stopDaemon();
  const r = await fails('restore', 'notes', '--latest', '--yes');
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/the daemon is not running .*start it with npm start or fleet daemon/);
  expect(await openRequests()).toEqual([]);
});

it('a restore a daemon started but never finished is closed as interrupted by the next daemon, not run again', async () => {
  const c = new pg.Client(f.registryUrl);
  await c.connect();
  const { rows: [req] } = await c.query(`INSERT INTO project_requests (project_id, kind, args, requested_by, started_at)
    VALUES ('notes', 'restore', '{"file": "/nowhere.dump", "backup": "nowhere.dump"}', 'alice', now()) RETURNING id`);
  await c.end();
  await f.boot();
  await expect.poll(async () => (await f.running!.daemon.registry.getRequest(Number(req.id)))?.outcome, { timeout: 20_000 })
    .toMatchObject({ ok: false, message: expect.stringMatching(/^interrupted: the daemon stopped during the restore/) });
  expect((await f.running!.daemon.registry.events('notes')).filter((e) => e.action === 'restore_failed').at(-1)?.detail).toMatchObject({ request: Number(req.id) });
  expect(await notes()).toEqual(['kept', 'newer']);
});

it('a suspended project: fleet restore refuses at once, and a request made before the suspend is closed, not left hanging', async () => {
  await f.running!.daemon.registry.update('notes', { suspended: { by: 'alice', at: new Date().toISOString() } });
  const r = await fails('restore', 'notes', '--latest', '--yes');
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/notes is suspended/);
  // A request already in the table when the suspend came: the daemon's plan refuses it, and the refusal is recorded.
  const req = await f.running!.daemon.registry.addRequest('notes', 'restore', { file: '/nowhere.dump', backup: 'nowhere.dump' }, 'bob');
  f.running!.daemon.kick();
  await expect.poll(async () => (await f.running!.daemon.registry.getRequest(req!.id))?.outcome, { timeout: 20_000 })
    .toMatchObject({ ok: false, message: expect.stringMatching(/suspended; resume it first/) });
  await f.running!.daemon.registry.update('notes', { suspended: null });
});

it('fleet plan --against-registry shows a pending restore as the daemon will run it', async () => {
  await f.stopDaemon(); // so that the request waits, as it does between two passes
  const c = new pg.Client(f.registryUrl);
  await c.connect();
  try {
    const { rows: [req] } = await c.query(`INSERT INTO project_requests (project_id, kind, args, requested_by)
      VALUES ('notes', 'restore', '{"file": "/x/2026-01-01T00-00-00.000Z-manual.dump", "backup": "2026-01-01T00-00-00.000Z-manual.dump"}', 'carol') RETURNING id`);
    try {
      const { stdout } = await run('node', [FLEET, 'plan', '--against-registry', '--registry', f.registryUrl, '--repo', f.repo.dir]);
      expect(stdout).toMatch(/^↺ notes\s+restore from 2026-01-01T00-00-00\.000Z-manual\.dump \(requested by carol\)/m);
    } finally {
      await c.query('DELETE FROM project_requests WHERE id = $1', [req.id]);
    }
  } finally {
    await c.end();
  }
});
