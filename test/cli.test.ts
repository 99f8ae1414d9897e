// The real `fleet` CLI (node scripts/fleet.js) on a real git repository built over several commits.
import { execFile } from 'node:child_process';
import { readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommitReader } from '../daemon/git/read.ts';
import { inverse } from '../daemon/core/plan.ts';
import type { Action } from '../daemon/core/types.ts';
import { DEFAULT_FLEET_YAML, createRepo, writeProject, type TestRepo } from './harness/git.ts';

const FLEET = fileURLToPath(new URL('../scripts/fleet.js', import.meta.url));

interface Run { code: number; stdout: string; stderr: string }

function fleet(cwd: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile('node', [FLEET, ...args], { cwd, env: { ...process.env, FLEET_DEBUG: '' } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function expectNoStack(run: Run) {
  expect(run.stdout + run.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
}

const V1 = 'export interface Post { id: string; title: string; }\n';
const V2 = 'export interface Post { id: string; title: string; body: string; }\n';

describe('fleet plan over a commit history', () => {
  let r: TestRepo;
  const c: string[] = [];
  const short = (i: number) => c[i].slice(0, 7);

  beforeAll(async () => {
    r = await createRepo();
    r.write('fleet.yaml', DEFAULT_FLEET_YAML);
    c[0] = r.commit('empty fleet');
    writeProject(r, 'blog', { schema: V1 });
    writeProject(r, 'shop');
    c[1] = r.commit('add blog and shop');
    r.write('projects/blog/schema.ts', V2);
    c[2] = r.commit('blog: add body');
    writeProject(r, 'blog', { schema: V2, manifest: { hostname: 'journal.localhost' } });
    c[3] = r.commit('blog: rename hostname');
    r.remove('projects/shop');
    c[4] = r.commit('remove shop');
    c[5] = r.revert(c[2]); // schema back to V1
    c[6] = r.revert(c[3]); // hostname back
    c[7] = r.revert(c[4]); // shop back
  });
  afterAll(() => r?.cleanup());

  const plan = async (base: number, head: number, format = 'text') => {
    const run = await fleet(r.dir, 'plan', '--base', c[base], '--head', c[head], '--format', format);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    return run.stdout.trimEnd();
  };
  const actionsOf = async (base: number, head: number) =>
    (JSON.parse(await plan(base, head, 'json')) as Action[]).map(({ reason: _r, ...rest }) => rest);
  /** Changes only: a project untouched by both commits is a noop in each. */
  const changesOf = async (base: number, head: number) => (await actionsOf(base, head)).filter((a) => a.kind !== 'noop');

  it('prints one line per changed project', async () => {
    expect((await plan(0, 1)).split('\n')).toEqual([
      '+ blog  new project at blog.localhost',
      '+ shop  new project at shop.localhost',
    ]);
    expect(await plan(1, 2)).toBe(`~ blog  schema.ts changed (${short(2)})`);
    expect(await plan(2, 3)).toBe('~ blog  changed: hostname blog.localhost → journal.localhost');
    expect(await plan(3, 4)).toBe('- shop  folder projects/shop removed from git; instance stopped, database kept');
    expect(await plan(4, 4)).toBe('No changes.');
  });

  it('calls out a schema revert in bold in markdown', async () => {
    expect(await plan(4, 5)).toBe(`~ blog  schema.ts reverted to earlier content (${short(5)})`);
    const md = await plan(4, 5, 'markdown');
    expect(md).toContain(`### Fleet plan: ${short(4)} → ${short(5)}`);
    expect(md).toContain(`| \`~\` | blog | **schema.ts reverted to earlier content (${short(5)}) (needs care)** |`);
    expect(await plan(1, 2, 'markdown')).not.toContain('**');
  });

  it('plans a revert commit as the exact inverse of the commit it reverts', async () => {
    for (const [reverted, revert] of [[2, 5], [3, 6], [4, 7]]) {
      const forward = await changesOf(reverted - 1, reverted);
      expect(forward.length).toBeGreaterThan(0);
      const undo = await changesOf(revert - 1, revert);
      expect(undo).toEqual(forward.map((a) => inverse({ ...a, reason: '' } as Action)).map(({ reason: _r, ...rest }) => rest));
    }
  });

  it('plans head against an older base in one go', async () => {
    expect(await actionsOf(1, 7)).toEqual([{ kind: 'noop', id: 'blog' }, { kind: 'noop', id: 'shop' }]);
    expect((await plan(7, 0)).split('\n')).toEqual([
      '- blog  folder projects/blog removed from git; instance stopped, database kept',
      '- shop  folder projects/shop removed from git; instance stopped, database kept',
    ]);
  });

  it('accepts revisions such as HEAD~1 and short shas', async () => {
    const run = await fleet(r.dir, 'plan', '--base', 'HEAD~1', '--head', short(7));
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe('+ shop  new project at shop.localhost');
  });

  it('exits 1 with a clear message for an unknown revision or format, 2 without --base', async () => {
    const unknown = await fleet(r.dir, 'plan', '--base', 'no-such-branch');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('unknown revision "no-such-branch"');
    expectNoStack(unknown);
    const noBase = await fleet(r.dir, 'plan');
    expect(noBase.code).toBe(2);
    expect(noBase.stderr).toContain('--base <rev> is required');
    // --against-registry is covered by test/e2e/plan-registry.test.ts (it needs a registry).
    const badFormat = await fleet(r.dir, 'plan', '--base', 'HEAD', '--format', 'yaml');
    expect(badFormat.code).toBe(1);
    expect(badFormat.stderr).toContain('--format must be text, markdown or json');
    expectNoStack(badFormat);
  });
});

describe('fleet plan with invalid manifests at head', () => {
  let r: TestRepo;
  beforeAll(async () => { r = await createRepo(); });
  afterAll(() => r?.cleanup());

  it('prints the plan for valid projects, then the issues, and exits 1', async () => {
    writeProject(r, 'blog');
    const base = r.commit('add blog');
    writeProject(r, 'shop');
    writeProject(r, 'wiki', { manifest: { hostname: 'blog.localhost' } });
    r.write('projects/docs/project.yaml', 'id: docs\nhostname: docs.localhost\nenv:\n  JWT_SECRET: hunter2\n');
    r.write('projects/docs/schema.ts', 'export interface Page { id: string; }\n');
    r.commit('add shop, a conflicting wiki, docs with a plaintext secret');
    const run = await fleet(r.dir, 'plan', '--base', base);
    expect(run.code).toBe(1);
    expect(run.stdout.trim()).toBe('+ shop  new project at shop.localhost');
    expect(run.stderr).toContain('projects/docs/project.yaml:4:15: /env/JWT_SECRET: looks like a secret');
    expect(run.stderr).toContain('projects/wiki/project.yaml:3:11: /hostname: "blog.localhost" is also used by projects/blog/project.yaml /hostname');
    expect(run.stderr).toContain('projects/blog/project.yaml:3:11: /hostname: "blog.localhost" is also used by projects/wiki/project.yaml /hostname');
    expectNoStack(run);
    const md = await fleet(r.dir, 'plan', '--base', base, '--format', 'markdown');
    expect(md.stdout).toContain('**Invalid manifests**');
  });
});

describe('fleet validate and fleet new', () => {
  let r: TestRepo;
  beforeAll(async () => {
    r = await createRepo();
    writeProject(r, 'blog');
    r.commit('add blog');
  });
  afterAll(() => r?.cleanup());

  it('scaffolds a project that validates', async () => {
    const created = await fleet(r.dir, 'new', 'acme_shop', '--hostname', 'shop.example.com');
    expect(created.code).toBe(0);
    const yaml = readFileSync(join(r.dir, 'projects/acme_shop/project.yaml'), 'utf8');
    expect(yaml.split('\n')[0]).toBe('# yaml-language-server: $schema=../../schemas/project.schema.json');
    expect(readFileSync(join(r.dir, 'projects/acme_shop/schema.ts'), 'utf8')).toContain('export interface Widget');
    const valid = await fleet(r.dir, 'validate');
    expect(valid).toMatchObject({ code: 0, stdout: '2 projects valid\n' });
  });

  it.each([
    [['new', 'Acme'], 'not a valid project id'],
    [['new', 'drop table'], 'not a valid project id'],
    [['new', 'a'.repeat(64)], 'not a valid project id'],
    [['new', 'blog'], 'projects/blog already exists'],
    [['new', 'other', '--hostname', 'blog.localhost'], 'already used by project blog'],
    [['new', 'other', '--hostname', 'Bad_Host'], 'not a valid hostname'],
    [['new', 'fleet'], '`fleet` is reserved'],
    [['new', 'pg_stats'], 'reserved'],
  ])('refuses %j', async (args, message) => {
    const run = await fleet(r.dir, ...args);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(message);
    expectNoStack(run);
  });

  it('prints each issue with file, line and path, in text and GitHub formats, and exits 1', async () => {
    r.write('projects/broken/project.yaml', 'id: broken\nhostname: Broken.localhost\nschema: ../blog/schema.ts\n');
    try {
      const text = await fleet(r.dir, 'validate');
      expect(text.code).toBe(1);
      expect(text.stdout.trim().split('\n')).toEqual([
        'projects/broken/project.yaml:2:11: /hostname: must be a lower-case DNS name such as acme.example.com',
      ]);
      r.write('projects/broken/project.yaml', 'id: broken\nhostname: broken.localhost\nschema: ../blog/schema.ts\n');
      const github = await fleet(r.dir, 'validate', '--format', 'github');
      expect(github.code).toBe(1);
      expect(github.stdout.trim()).toBe(
        '::error file=projects/broken/project.yaml,line=3,col=9::/schema: must stay inside the project folder (no ..)');
      r.write('fleet.yaml', 'driver: kubernetes\n');
      const fleetBad = await fleet(r.dir, 'validate');
      expect(fleetBad.stdout).toContain('fleet.yaml:1:9: /driver: must be one of: process, docker');
      expectNoStack(fleetBad);
    } finally {
      r.remove('projects/broken');
      r.write('fleet.yaml', DEFAULT_FLEET_YAML);
    }
  });
});

describe('fleet validate and the daemon agree on a committed symlink', () => {
  let r: TestRepo;
  beforeAll(async () => { r = await createRepo(); });
  afterAll(() => r?.cleanup());

  it('refuses schema.ts -> /etc/passwd in the worktree (CLI) and at the commit (daemon reader)', async () => {
    writeProject(r, 'blog');
    writeProject(r, 'evil');
    r.remove('projects/evil/schema.ts');
    symlinkSync('/etc/passwd', `${r.dir}/projects/evil/schema.ts`);
    r.commit('evil links its schema to /etc/passwd');
    const run = await fleet(r.dir, 'validate');
    expect(run.code).toBe(1);
    expect(run.stdout.trim().split('\n')).toEqual([
      'projects/evil/schema.ts: is a symlink; the fleet never follows links: commit the file itself',
    ]);
    expect(run.stderr).toContain('1 project(s) invalid');
    expect(run.stdout + run.stderr).not.toContain('root:');
    expectNoStack(run);
    const read = await createCommitReader(r.dir).read('HEAD');
    expect(read.invalid).toEqual([{ id: 'evil', errors: [expect.objectContaining({ file: 'projects/evil/schema.ts' })] }]);
    expect(read.projects.map((p) => p.id)).toEqual(['blog']);
  });
});
