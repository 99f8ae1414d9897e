// `fleet daemon` as a real process, killed with SIGKILL: mid-provision it converges on restart with nothing created
// twice and nothing lost; after convergence a new daemon re-adopts the running instances instead of restarting them.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createLogger } from '../../daemon/log.ts';
import { createLocalSecretStore } from '../../daemon/secrets/local.ts';
import { createRepo, writeProject, type TestRepo } from '../harness/git.ts';
import { startPostgres, type TestPostgres } from '../harness/postgres.ts';
import { spawnDaemon, type DaemonProcess } from '../harness/daemon-process.ts';
import { instancePid, pidNumber, processesOf, stopInstances } from '../harness/instances.ts';

const IDS = ['blog', 'shop'];
const quiet = createLogger({ level: 'silent' });

describe('fleet daemon killed with SIGKILL', () => {
  let pgs: TestPostgres;
  let repo: TestRepo;
  let stateDir: string;
  let registryUrl: string;
  let db: pg.Client;
  let commit: string;
  const daemons: DaemonProcess[] = [];

  const start = () => {
    const d = spawnDaemon({ repoDir: repo.dir, stateDir, registryUrl, adminUrl: pgs.url });
    daemons.push(d);
    return d;
  };
  const rows = async () => {
    try {
      return (await db.query('SELECT id, status, applied_commit FROM projects ORDER BY id')).rows as { id: string; status: string; applied_commit: string | null }[];
    } catch (err) {
      if ((err as { code?: string }).code === '42P01') return []; // not migrated yet
      throw err;
    }
  };
  const eventCounts = async (action: string) => Object.fromEntries((await db.query(
    'SELECT project_id, count(*)::int AS n FROM project_events WHERE action = $1 GROUP BY project_id', [action],
  )).rows.map((r) => [r.project_id, r.n]));
  const converged = () => vi.waitFor(async () => {
    const r = await rows();
    if (r.length !== IDS.length || r.some((p) => p.status !== 'running' || p.applied_commit !== commit)) throw new Error(`not converged: ${JSON.stringify(r)}`);
  }, { timeout: 60_000, interval: 100 });

  beforeAll(async () => {
    pgs = await startPostgres();
    registryUrl = await pgs.database('atomo_fleet');
    db = new pg.Client(registryUrl);
    await db.connect();
    repo = await createRepo();
    stateDir = mkdtempSync(join(tmpdir(), 'fleet-restart-'));
    chmodSync(stateDir, 0o755);
    for (const id of IDS) writeProject(repo, id);
    commit = repo.commit('add blog and shop');
  });
  afterAll(async () => {
    for (const d of daemons) await d.kill9();
    if (stateDir) await stopInstances(stateDir, quiet);
    await db?.end().catch(() => {});
    await pgs?.destroy();
    repo?.cleanup();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('killed mid-provision and again mid-start, it converges on restart: one database, role, secret version, create event and instance per project', async () => {
    const first = start();
    // Kill the moment a project is registered but not yet running (checked every 20 ms).
    await vi.waitFor(async () => {
      if (!(await rows()).some((p) => p.status === 'provisioning')) throw new Error('no project provisioning yet');
      first.child.kill('SIGKILL');
    }, { timeout: 60_000, interval: 20 });
    await first.exited;
    const lastWords = first.lines.map((l) => { try { return JSON.parse(l).msg; } catch { return l; } }).slice(-3);
    console.log(`killed mid-provision after: ${lastWords.join(' | ')}`);
    const atKill = await rows();
    expect(atKill.length === IDS.length && atKill.every((p) => p.status === 'running' && p.applied_commit === commit)).toBe(false);

    // Kill the second one the moment an instance exists (its pid file), before the pass records it.
    const second = start();
    await vi.waitFor(() => {
      if (!IDS.some((id) => existsSync(join(stateDir, 'instances', `${id}.json`)))) throw new Error('no instance yet');
      second.child.kill('SIGKILL');
    }, { timeout: 60_000, interval: 10 });
    await second.exited;
    start();
    await converged();
    const admin = new pg.Client(pgs.url);
    await admin.connect();
    try {
      const dbs = (await admin.query("SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1', 'atomo_fleet') ORDER BY 1")).rows;
      expect(dbs.map((r) => r.datname)).toEqual(['atomo_blog', 'atomo_shop']);
      const roles = (await admin.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'atomo%' ORDER BY 1")).rows;
      expect(roles.map((r) => r.rolname)).toEqual(['atomo_blog', 'atomo_shop']);
    } finally {
      await admin.end();
    }
    const secrets = createLocalSecretStore({ dir: join(stateDir, 'secrets'), prefix: '/atomo' });
    for (const id of IDS) {
      const stored = await secrets.list(`/atomo/${id}`);
      expect(stored.map((s) => [s.ref, s.version])).toEqual([[`/atomo/${id}/DATABASE_URL`, 1], [`/atomo/${id}/JWT_SECRET`, 1]]);
      // The role's password is the stored one, whichever statement the kill fell between.
      const c = new pg.Client(await secrets.get(`/atomo/${id}/DATABASE_URL`));
      await c.connect();
      await c.end();
      // Exactly one live process per project, and it is the one the pid file names.
      const procs = processesOf(stateDir, id);
      expect(procs).toHaveLength(1);
      expect(pidNumber(await instancePid(stateDir, id, quiet))).toBe(procs[0]);
    }
    expect(await eventCounts('create')).toEqual({ blog: 1, shop: 1 });
    for (const n of Object.values(await eventCounts('database_created'))) expect(n).toBeLessThanOrEqual(1);
  });

  it('a new daemon after SIGKILL re-adopts the running instances instead of restarting them', async () => {
    const pids = Object.fromEntries(await Promise.all(IDS.map(async (id) => [id, await instancePid(stateDir, id, quiet)])));
    const starts = { ...(await eventCounts('start')) };
    const restarts = { ...(await eventCounts('restart')) };
    await daemons.at(-1)!.kill9();
    const next = start();
    // A full pass of the new daemon has converged (its /healthz says so), and nothing was started again.
    await vi.waitFor(async () => {
      const url = next.httpUrl();
      if (!url) throw new Error('daemon has not logged its HTTP address yet');
      const health = await (await fetch(`${url}/healthz`)).json() as { last: { ok: boolean; commit: string } };
      if (!health.last.ok || health.last.commit !== commit) throw new Error(`not converged yet: ${JSON.stringify(health.last)}`);
    }, { timeout: 30_000, interval: 100 });
    // /status needs the operator token, which the daemon keeps in its (local) secret store.
    const token = await createLocalSecretStore({ dir: join(stateDir, 'secrets'), prefix: '/atomo' }).get('/atomo/fleet/OPERATOR_TOKEN');
    const status = await (await fetch(`${next.httpUrl()}/status`, { headers: { authorization: `Bearer ${token}` } })).json() as { projects: { id: string; status: string; upstream: string }[] };
    expect(status.projects.map((p) => [p.id, p.status])).toEqual([['blog', 'running'], ['shop', 'running']]);
    for (const id of IDS) {
      expect(await instancePid(stateDir, id, quiet)).toBe(pids[id]);
      expect(processesOf(stateDir, id)).toEqual([pidNumber(pids[id])]);
    }
    expect(await eventCounts('start')).toEqual(starts);
    expect(await eventCounts('restart')).toEqual(restarts);
    expect(next.lines.some((l) => l.includes('holding the reconcile lock'))).toBe(true);
  });
});
