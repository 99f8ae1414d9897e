// Provisioning is a planned step: what was provisioned (role, database, secrets, connection limit) is recorded in
// the registry, so a daemon restart does not do it again, and a change of resources.connections is a `provision`
// action the preview shows and the daemon records.
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';
import { registryPlan } from '../../scripts/commands/plan.ts';
import { Registry } from '../../daemon/registry/registry.ts';
import { createLogger } from '../../daemon/log.ts';

let f: TestFleet;

async function adminQuery(sql: string): Promise<any[]> {
  const c = new pg.Client(f.pg.url);
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}
// SCRAM verifiers are salted anew on every ALTER ROLE ... PASSWORD: an unchanged verifier means no re-provisioning.
const verifier = async () => (await adminQuery("SELECT rolpassword FROM pg_authid WHERE rolname = 'atomo_blog'"))[0].rolpassword as string;
const connLimit = async () => (await adminQuery("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'atomo_blog'"))[0].rolconnlimit as number;

beforeAll(async () => {
  f = await createFleet();
  writeProject(f.repo, 'blog');
  const c = f.repo.commit('blog');
  await f.boot();
  await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === c);
});
afterAll(async () => f?.destroy());

it('a daemon restart does not provision again', async () => {
  const before = await verifier();
  await f.stopDaemon();
  await f.boot();
  const start = f.running!.daemon.passes;
  await expect.poll(() => f.running!.daemon.passes, { timeout: 20_000 }).toBeGreaterThanOrEqual(start + 2);
  expect(await verifier()).toBe(before);
});

it('a change of resources.connections is a planned provision: previewed, applied, recorded', async () => {
  writeProject(f.repo, 'blog', { manifest: { resources: { connections: 7 } } });
  f.repo.commit('blog: 7 connections');
  await f.stopDaemon();
  const registry = new Registry(f.registryUrl, createLogger({ level: 'silent' }));
  const preview = await registryPlan(f.repo.dir, registry, 'HEAD', 'json').finally(() => registry.close());
  expect(preview.actions.filter((a) => a.id === 'blog').map((a) => a.kind)).toEqual(['provision', 'update']);
  await f.boot();
  await expect.poll(connLimit, { timeout: 20_000 }).toBe(7);
  await expect.poll(async () => (await f.events('blog')).filter((e) => e.action === 'provision').length).toBe(1);
});
