// Generated hostile input (test/harness/hostile.ts) in one real git repository next to two valid projects, through
// the real CLI (`fleet validate`, which reads the working tree) and the daemon's commit reader: every hostile folder
// is invalid with an issue naming its file, the valid projects stay valid, nothing throws, hangs or prints a stack.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommitReader, type FleetRead } from '../daemon/git/read.ts';
import { readWorktree } from '../daemon/git/worktree.ts';
import { checkFleetConfig } from '../daemon/manifest/fleet-config.ts';
import { formatIssue } from '../daemon/manifest/parse.ts';
import { DEFAULT_FLEET_YAML, createRepo, writeProject, type TestRepo } from './harness/git.ts';
import { HOSTILE_CATEGORIES, hostileFleetYamls, hostileProjects, writeHostile, type HostileProject } from './harness/hostile.ts';

const FLEET = fileURLToPath(new URL('../scripts/fleet.js', import.meta.url));
const SEED = Number(process.env.HOSTILE_SEED ?? 20_240_601);
const VALID = ['alpha', 'bravo'];

interface Run { code: number; stdout: string; stderr: string; ms: number }

function fleet(cwd: string, ...args: string[]): Promise<Run> {
  const start = performance.now();
  return new Promise((resolve) => {
    execFile('node', [FLEET, ...args], { cwd, env: { ...process.env, FLEET_DEBUG: '' }, maxBuffer: 64 * 1024 * 1024, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr, ms: performance.now() - start });
      });
  });
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}

/** The issue lines of one project: those naming a file inside its folder, or the folder itself. */
const linesOf = (lines: string[], id: string) =>
  lines.filter((l) => l.startsWith(`projects/${id}/`) || l.startsWith(`projects/${id}:`));

function expectHostileRefused(p: HostileProject, lines: string[], where: string) {
  const own = linesOf(lines, p.id);
  expect(own.length, `${where}: ${p.category} ${p.id} has no issue`).toBeGreaterThan(0);
  expect(own.some((l) => p.expect.test(l)), `${where}: ${p.category} ${p.id}: no issue matches ${p.expect} in:\n${own.join('\n')}`)
    .toBe(true);
}

describe('hostile project folders in one repository', () => {
  const hostile = hostileProjects(SEED, 320);
  let r: TestRepo;
  beforeAll(async () => {
    r = await createRepo();
    for (const id of VALID) writeProject(r, id);
    for (const p of hostile) writeHostile(r.dir, p);
    r.commit('two valid projects and hostile ones');
  }, 120_000);
  afterAll(() => r?.cleanup());

  it('generates at least 300 folders covering every category, deterministically', () => {
    expect(hostile.length).toBeGreaterThanOrEqual(300);
    expect(new Set(hostile.map((p) => p.category))).toEqual(new Set(HOSTILE_CATEGORIES));
    expect(new Set(hostile.map((p) => p.id)).size).toBe(hostile.length);
    expect(hostileProjects(SEED, 320).map((p) => [p.id, String(p.expect)])).toEqual(hostile.map((p) => [p.id, String(p.expect)]));
  });

  it('fleet validate (the worktree) refuses every hostile folder and only those, without a stack trace', async () => {
    const run = await fleet(r.dir, 'validate');
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).not.toMatch(/^\s+at /m);
    const lines = run.stdout.split('\n').filter(Boolean);
    // Every line is one issue naming a file of a project folder (or the folder itself), never anything else.
    for (const line of lines) expect(line).toMatch(/^projects\/[^/:\s]+(\/[^:\s]+)*(:\d+:\d+)?: /);
    for (const p of hostile) expectHostileRefused(p, lines, 'fleet validate');
    for (const id of VALID) expect(linesOf(lines, id)).toEqual([]);
    expect(run.stderr).toContain(`${hostile.length} project(s) invalid, ${VALID.length} valid`);
  }, 60_000);

  let fromCommit: FleetRead;
  it('the commit reader (the daemon) refuses every hostile folder (a stall fails the test timeout; speed is measured by npm run bench -- validate)', async () => {
    const reader = createCommitReader(r.dir);
    const first = await timed(() => reader.read('HEAD'));
    fromCommit = first.value;
    expect(fromCommit.projects.map((p) => p.id)).toEqual(VALID);
    expect(fromCommit.fleetIssues).toEqual([]);
    expect(fromCommit.invalid.map((p) => p.id).sort()).toEqual(hostile.map((p) => p.id).sort());
    for (const invalid of fromCommit.invalid) {
      // Each issue names a file of the project's own folder.
      for (const e of invalid.errors) expect(e.file === `projects/${invalid.id}` || e.file.startsWith(`projects/${invalid.id}/`)).toBe(true);
      expect(invalid.errors.length).toBeLessThanOrEqual(21 * 3);
    }
    const lines = fromCommit.invalid.flatMap((p) => p.errors.map(formatIssue));
    for (const p of hostile) expectHostileRefused(p, lines, 'commit reader');
    const again = await timed(() => reader.read('HEAD'));
  }, 30_000);

  it('the worktree and the commit agree', async () => {
    const fromDisk = await timed(() => readWorktree(r.dir));
    expect(fromDisk.value.invalid).toEqual(fromCommit.invalid);
    expect(fromDisk.value.projects.map((p) => ({ ...p, commit: '' }))).toEqual(fromCommit.projects.map((p) => ({ ...p, commit: '' })));
  }, 30_000);
});

describe('hostile fleet.yaml', () => {
  const cases = hostileFleetYamls(SEED, 80);

  it.each(cases.map((c) => [c.name, c] as const))('%s → fleetIssues naming fleet.yaml', (_name, c) => {
    const { config, issues } = checkFleetConfig(c.text);
    expect(config).toBeNull();
    const lines = issues.map(formatIssue);
    for (const line of lines) expect(line).toMatch(/^fleet\.yaml(:\d+:\d+)?: /);
    expect(lines.some((l) => c.expect.test(l)), `no issue matches ${c.expect} in:\n${lines.join('\n')}`).toBe(true);
    expect(issues.length).toBeLessThanOrEqual(21);
  });

  it('through both readers and the CLI, in a real repository', async () => {
    const r = await createRepo();
    try {
      writeProject(r, 'alpha');
      r.commit('alpha');
      const reader = createCommitReader(r.dir);
      for (const c of cases.slice(0, 25)) {
        writeFileSync(join(r.dir, 'fleet.yaml'), c.text);
        r.commit(`fleet.yaml: ${c.name}`, { allowEmpty: true });
        const fromCommit = await timed(() => reader.read('HEAD'));
        const fromDisk = await timed(() => readWorktree(r.dir));
        for (const [mode, read] of [['commit', fromCommit], ['worktree', fromDisk]] as const) {
          expect(read.value.fleet, `${mode}: ${c.name}`).toBeNull();
          expect(read.value.fleetIssues.map(formatIssue).some((l) => c.expect.test(l)), `${mode}: ${c.name}`).toBe(true);
          expect(read.value.projects.map((p) => p.id), `${mode}: ${c.name}`).toEqual(['alpha']);
        }
      }
      const run = await fleet(r.dir, 'validate');
      expect(run.code).toBe(1);
      expect(run.stdout).toMatch(/^fleet\.yaml/m);
      expect(run.stdout + run.stderr).not.toMatch(/^\s+at /m);
      writeFileSync(join(r.dir, 'fleet.yaml'), DEFAULT_FLEET_YAML);
      expect(await fleet(r.dir, 'validate')).toMatchObject({ code: 0, stdout: '1 projects valid\n' });
    } finally {
      r.cleanup();
    }
  }, 120_000);
});
