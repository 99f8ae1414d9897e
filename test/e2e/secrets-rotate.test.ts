// `fleet secrets rotate <project> JWT_SECRET` end to end with the process driver and the local store: a new
// version is stored, an event recorded, that project restarts with the new value and the other does not.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rotateSecret } from '../../scripts/commands/secrets.ts';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';

const run = promisify(execFile);
const FLEET_JS = resolve(import.meta.dirname, '../../scripts/fleet.js');
const JWT_REF = '/atomo/blog/JWT_SECRET';

let f: TestFleet;

async function pidOf(id: string): Promise<number | undefined> {
  const inst = (await f.running!.driver.list()).find((i) => i.id === id && i.running);
  return inst ? Number(inst.ref.replace(/^pid:/, '')) : undefined;
}

/** One variable of a live process's environment, as the kernel holds it. */
function envOf(pid: number, name: string): string | undefined {
  const vars = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  return vars.find((v) => v.startsWith(`${name}=`))?.slice(name.length + 1);
}

async function version(ref: string): Promise<number> {
  return (await f.running!.secrets.list('/atomo/blog')).find((s) => s.ref === ref)!.version;
}

/** Rotate by some means, then wait until blog runs a new process with the new value; shop must not restart. */
async function expectRotation(rotate: () => Promise<void>): Promise<{ value: string }> {
  const blogPid = (await pidOf('blog'))!;
  const shopPid = (await pidOf('shop'))!;
  const oldValue = await f.running!.secrets.get(JWT_REF);
  expect(envOf(blogPid, 'JWT_SECRET')).toBe(oldValue);
  const oldVersion = await version(JWT_REF);
  const before = (await f.project('blog'))!;
  await rotate();
  const value = await f.running!.secrets.get(JWT_REF);
  expect(value).not.toBe(oldValue);
  expect(await version(JWT_REF)).toBe(oldVersion + 1);
  expect((await f.project('blog'))!.secretsVersion).toBe(before.secretsVersion + 1);
  // The new secrets version changes blog's spec hash: the row shows the new spec once its instance answers.
  await f.until('blog', (p) => p.specHash !== before.specHash && p.lastHealth?.ok === true && p.conditions.some((c) => c.type === 'Ready' && c.status));
  const newPid = await pidOf('blog');
  expect(newPid).toBeDefined();
  expect(newPid).not.toBe(blogPid);
  expect(envOf(newPid!, 'JWT_SECRET')).toBe(value);
  expect(await pidOf('shop')).toBe(shopPid);
  expect((await f.project('shop'))!.secretsVersion).toBe(0);
  return { value };
}

beforeAll(async () => {
  f = await createFleet();
  writeProject(f.repo, 'blog');
  writeProject(f.repo, 'shop');
  const c1 = f.repo.commit('add blog and shop');
  await f.boot();
  await f.until('blog', (p) => p.status === 'running' && p.appliedCommit === c1);
  await f.until('shop', (p) => p.status === 'running' && p.appliedCommit === c1);
});

afterAll(async () => {
  await f?.destroy();
});

describe('fleet secrets rotate', () => {
  it('rotateSecret(): new version, secret_rotated event, blog restarts with the new value, shop does not', async () => {
    const eventsBefore = (await f.running!.daemon.registry.events('blog')).length;
    await expectRotation(async () => {
      const r = await rotateSecret({
        registry: f.running!.daemon.registry, secrets: f.running!.secrets, project: 'blog', name: 'JWT_SECRET', actor: 'ops@example.com',
      });
      expect(r).toEqual({ ref: JWT_REF, version: 1 });
    });
    const events = (await f.running!.daemon.registry.events('blog')).slice(eventsBefore);
    expect(events.find((e) => e.action === 'secret_rotated')).toMatchObject({
      actor: 'ops@example.com', detail: { name: 'JWT_SECRET', ref: JWT_REF, secretsVersion: 1 },
    });
    expect(events.filter((e) => e.action === 'restart')).toHaveLength(1);
    expect((await f.running!.daemon.registry.events('shop')).filter((e) => e.action === 'secret_rotated')).toEqual([]);
  });

  it('the real CLI rotates the same way and prints no secret value', async () => {
    let out = '';
    const { value } = await expectRotation(async () => {
      const r = await run(process.execPath, [
        FLEET_JS, 'secrets', 'rotate', 'blog', 'JWT_SECRET',
        '--repo', f.repo.dir, '--registry', f.registryUrl, '--state-dir', f.stateDir,
      ], { env: { ...process.env, NO_COLOR: '1' } });
      out = r.stdout + r.stderr;
    });
    expect(out).toContain('rotated JWT_SECRET of blog (/atomo/blog/JWT_SECRET); secrets version 2');
    expect(out).not.toContain(value);
    const last = (await f.running!.daemon.registry.events('blog')).filter((e) => e.action === 'secret_rotated').at(-1);
    expect(last?.detail).toMatchObject({ secretsVersion: 2 });
  });

  it('refuses a secret the project does not have, naming the ones it has', async () => {
    const cli = run(process.execPath, [
      FLEET_JS, 'secrets', 'rotate', 'blog', 'NOPE', '--repo', f.repo.dir, '--registry', f.registryUrl, '--state-dir', f.stateDir,
    ]);
    cli.child.stdin?.end(); // values other than JWT_SECRET come on stdin: give it an empty one
    const err = await cli.catch((e: { code: number; stderr: string; stdout: string }) => e);
    expect((err as { code: number }).code).not.toBe(0);
    const text = (err as { stderr: string }).stderr;
    expect(text).toMatch(/project blog has no secret NOPE; known: (DATABASE_URL, JWT_SECRET|JWT_SECRET, DATABASE_URL)/);
    expect(text).not.toMatch(/\n\s+at /); // no stack trace
  });
});

