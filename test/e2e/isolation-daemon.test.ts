// One broken file breaks only its project, in the daemon: hostile project folders (alias bombs, unresolved aliases,
// NUL bytes, a 10 MB manifest, symlinks) are invalid and named, while every other project converges in the same
// pass and /healthz keeps answering; a broken fleet.yaml keeps the last valid one. Real git, Postgres, processes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { writeProject } from '../harness/git.ts';
import { hostileProjects, writeHostile } from '../harness/hostile.ts';

type InvalidState = { commit: string; projects: { id: string; issues: string[] }[] };
const invalidState = (f: TestFleet) => f.running!.daemon.registry.getState<InvalidState>('invalid');

const ALIAS_BOMB = [
  'id: bomb', 'hostname: bomb.localhost',
  'a: &a ["x","x","x","x","x","x","x","x","x"]',
  'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
  'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
  'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
  'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
  'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
  'g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]', '',
].join('\n');

/** Every file under `dir` (recursively) whose content contains `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) {
      if (name !== 'pg') found.push(...filesContaining(path, needle));
    } else if (st.isFile() && st.size < 5_000_000 && readFileSync(path, 'latin1').includes(needle)) found.push(path);
  }
  return found;
}

describe('hostile project folders in a commit', () => {
  let f: TestFleet;
  beforeAll(async () => {
    f = await createFleet();
    writeProject(f.repo, 'good');
    const c = f.repo.commit('good');
    await f.boot();
    await f.until('good', (p) => p.status === 'running' && p.appliedCommit === c);
  });
  afterAll(async () => f?.destroy());

  it('are invalid and named by file while the good project converges in the same commit, /healthz answering throughout', async () => {
    f.repo.write('projects/bomb/project.yaml', ALIAS_BOMB);
    f.repo.write('projects/bomb/schema.ts', 'export interface A { id: string }\n');
    f.repo.write('projects/unresolved/project.yaml', 'id: unresolved\nhostname: *nowhere\n');
    f.repo.write('projects/unresolved/schema.ts', 'export interface A { id: string }\n');
    f.repo.write('projects/nul/project.yaml', 'id: nul\nhostname: nul.localhost\nenv:\n  A: "x\0y"\n');
    f.repo.write('projects/nul/schema.ts', 'export interface A { id: string }\n');
    f.repo.write('projects/big/project.yaml', `id: big\nhostname: big.localhost\nenv:\n${'  K: v\n'.repeat(10)}# ${'x'.repeat(10 * 1024 * 1024)}\n`);
    f.repo.write('projects/big/schema.ts', 'export interface A { id: string }\n');
    const many = Array.from({ length: 20_000 }, (_, i) => `K${i}: v`).join(', ');
    f.repo.write('projects/many/project.yaml', `id: many\nhostname: many.localhost\nenv: { ${many} }\n`);
    f.repo.write('projects/many/schema.ts', 'export interface A { id: string }\n');
    writeProject(f.repo, 'good', { manifest: { env: { GREETING: 'hello' } } });
    const c = f.repo.commit('hostile folders beside a change to good');

    let slowest = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const t = Date.now();
        await fetch(`${f.running!.httpUrl}/healthz`).then((r) => r.text());
        slowest = Math.max(slowest, Date.now() - t);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const good = await f.until('good', (p) => p.status === 'running' && p.appliedCommit === c, 30_000);
    polling = false;
    await poller;
    expect(good.env).toEqual({ GREETING: 'hello' });
    // A hang guard, not a speed target: a large manifest used to stall the event loop (and /healthz) for 46 s.
    expect(slowest).toBeLessThan(2000);

    await expect.poll(async () => (await invalidState(f))?.commit).toBe(c);
    const issues = new Map((await invalidState(f))!.projects.map((p) => [p.id, p.issues.join('\n')]));
    for (const id of ['bomb', 'unresolved', 'nul', 'big', 'many']) {
      expect(issues.get(id), id).toMatch(new RegExp(`projects/${id}/project\\.yaml`));
      expect(await f.project(id)).toBeNull();
    }
    expect(issues.get('nul')).toMatch(/projects\/nul\/project\.yaml:\d+:\d+/);
    await expect.poll(() => f.running!.daemon.last).toMatchObject({ commit: c, ok: true });
    expect(f.logs.join('\n')).not.toMatch(/\n\s+at /);
  });

  it('a broken fleet.yaml keeps the last valid one; projects of the same commit still converge', async () => {
    const before = f.running!.daemon.lastFleet;
    expect(before).not.toBeNull();
    f.repo.write('fleet.yaml', ALIAS_BOMB.replace('id: bomb\nhostname: bomb.localhost\n', 'branch: main\n'));
    writeProject(f.repo, 'good', { manifest: { env: { GREETING: 'again' } } });
    const c = f.repo.commit('fleet.yaml alias bomb');
    const good = await f.until('good', (p) => p.appliedCommit === c && p.status === 'running');
    expect(good.env).toEqual({ GREETING: 'again' });
    expect(f.running!.daemon.lastFleet).toEqual(before);
    await expect.poll(() => f.running!.daemon.last).toMatchObject({ commit: c, ok: true });
    expect(f.logs.some((l) => /fleet\.yaml is invalid/.test(l))).toBe(true);
  });
});

describe('symlinks under projects/', () => {
  let f: TestFleet;
  let outside: string;
  const MARKER = 'outside-the-repo-7c1e9a';
  beforeAll(async () => {
    outside = mkdtempSync(join(tmpdir(), 'fleet-outside-'));
    writeFileSync(join(outside, 'secret.ts'), `export interface Leak { ${MARKER}: string }\n`);
    f = await createFleet();
    writeProject(f.repo, 'good');
    f.repo.commit('good');
  });
  afterAll(async () => {
    await f?.destroy();
    rmSync(outside, { recursive: true, force: true });
  });

  it('commit mode: a committed symlinked schema.ts makes the project invalid and its target is never read', async () => {
    writeProject(f.repo, 'leak');
    rmSync(join(f.repo.dir, 'projects/leak/schema.ts'));
    symlinkSync(join(outside, 'secret.ts'), join(f.repo.dir, 'projects/leak/schema.ts'));
    const c = f.repo.commit('leak: schema.ts is a symlink');
    await f.boot();
    await f.until('good', (p) => p.status === 'running' && p.appliedCommit === c);
    await expect.poll(async () => (await invalidState(f))?.projects.find((p) => p.id === 'leak')?.issues.join('\n')).toMatch(/projects\/leak\/schema\.ts.*symlink/);
    expect(await f.project('leak')).toBeNull();
    expect(filesContaining(f.stateDir, MARKER)).toEqual([]);
    await f.stopDaemon();
  });

  it('worktree mode: a symlinked folder or file is refused, never followed, never copied into the state dir', async () => {
    symlinkSync(outside, join(f.repo.dir, 'projects', 'linked'));
    await f.boot({ watchWorktree: true });
    await expect.poll(async () => {
      const s = await invalidState(f);
      return s?.commit === 'worktree' ? s.projects.map((p) => p.id).sort() : null;
    }, { timeout: 15_000 }).toEqual(['leak', 'linked']);
    expect(await f.project('leak')).toBeNull();
    expect(existsSync(join(f.stateDir, 'projects', 'leak', 'schema.ts'))).toBe(false);
    expect(filesContaining(f.stateDir, MARKER)).toEqual([]);
    expect((await f.project('good'))!.status).toBe('running');
  });
});

describe('300+ generated hostile folders through one daemon pass', () => {
  let f: TestFleet;
  let c0: string;
  const hostile = hostileProjects(Number(process.env.HOSTILE_SEED ?? 20_240_601), 320);
  beforeAll(async () => {
    f = await createFleet();
    writeProject(f.repo, 'alpha');
    writeProject(f.repo, 'bravo', { manifest: { env: { MODE: 'calm' } } });
    c0 = f.repo.commit('two valid projects');
    await f.boot();
    // Both run before the hostile commit: whether the daemon's first pass came before or after it was a race.
    for (const id of ['alpha', 'bravo']) await f.until(id, (p) => p.status === 'running' && p.appliedCommit === c0, 60_000);
  });
  afterAll(async () => f?.destroy());

  it('every hostile folder is invalid and named, both valid projects converge in the same pass, nothing hangs', async () => {
    for (const p of hostile) writeHostile(f.repo.dir, p);
    writeProject(f.repo, 'bravo', { manifest: { env: { MODE: 'busy' } } });
    const c = f.repo.commit('hostile folders beside the valid projects');
    const started = Date.now();
    const bravo = await f.until('bravo', (p) => p.status === 'running' && p.appliedCommit === c, 60_000);
    // alpha's folder is the same at c: it runs on, its row untouched by the commit.
    expect(await f.project('alpha')).toMatchObject({ status: 'running', appliedCommit: c0 });
    expect(bravo.env).toEqual({ MODE: 'busy' });
    await expect.poll(async () => (await invalidState(f))?.commit).toBe(c);
    const passMs = Date.now() - started;
    const issues = new Map((await invalidState(f))!.projects.map((p) => [p.id, p.issues]));
    for (const p of hostile) {
      const own = issues.get(p.id) ?? [];
      expect(own.length, `${p.category} ${p.id} is not invalid`).toBeGreaterThan(0);
      expect(own.join('\n'), `${p.category} ${p.id}`).toMatch(new RegExp(`projects/${p.id.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    }
    // None of them got a row, a database or an instance.
    const rows = await f.running!.daemon.registry.list();
    expect(rows.map((r) => r.id).sort()).toEqual(['alpha', 'bravo']);
    // The pass goes on after the registry writes (gateway, backups): its outcome is recorded at its very end.
    await expect.poll(() => f.running!.daemon.last, { timeout: 30_000 }).toMatchObject({ commit: c, ok: true });
    expect(f.logs.join('\n')).not.toMatch(/\n\s+at /);
    expect(passMs).toBeLessThan(30_000);
  });
});
