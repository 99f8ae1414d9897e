// The commit reader against real git repositories: reads objects without a checkout, caches by tree id.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isFleetError } from '../daemon/core/errors.ts';
import { createCommitReader, resolveRev, schemaHistoryBefore } from '../daemon/git/read.ts';
import { readWorktree } from '../daemon/git/worktree.ts';
import { formatIssue } from '../daemon/manifest/parse.ts';
import type { FleetRead } from '../daemon/git/read.ts';
import { sha256 } from '../daemon/manifest/project.ts';
import { createRepo, writeProject, type TestRepo } from './harness/git.ts';

const repos: TestRepo[] = [];
const dirs: string[] = [];
afterEach(() => {
  repos.splice(0).forEach((r) => r.cleanup());
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});

async function repo(): Promise<TestRepo> {
  const r = await createRepo();
  repos.push(r);
  return r;
}

describe('createCommitReader', () => {
  it('re-parses only the project folders whose tree changed', async () => {
    const r = await repo();
    writeProject(r, 'blog');
    writeProject(r, 'shop');
    const c1 = r.commit('add blog and shop');
    r.write('projects/blog/schema.ts', 'export interface Post { id: string; title: string; }\n');
    const c2 = r.commit('blog: add title');
    const reader = createCommitReader(r.dir);

    const first = await reader.read(c1);
    expect(first.projects.map((p) => p.id)).toEqual(['blog', 'shop']);
    expect(reader.stats.projectParses).toBe(2);

    await reader.read(c1);
    expect(reader.stats.projectParses).toBe(2); // same commit: nothing parsed again

    const second = await reader.read(c2);
    expect(reader.stats.projectParses).toBe(3); // only blog changed
    expect(second.projects.find((p) => p.id === 'shop')!.manifest)
      .toBe(first.projects.find((p) => p.id === 'shop')!.manifest);
    expect(second.projects.every((p) => p.commit === c2)).toBe(true);
    expect(second.projects[0].schema.digest).toBe(sha256('export interface Post { id: string; title: string; }\n'));
    expect(reader.stats.fleetParses).toBe(1);
  });

  it('reads git objects, not the files on disk', async () => {
    const r = await repo();
    writeProject(r, 'blog', { manifest: { env: { ATOMO_ENV: 'production' } } });
    const c1 = r.commit('add blog');
    r.remove('projects');
    r.write('fleet.yaml', 'not: [valid');
    const read = await createCommitReader(r.dir).read(c1);
    expect(read.invalid).toEqual([]);
    expect(read.fleetIssues).toEqual([]);
    expect(read.projects[0].manifest.env).toEqual({ ATOMO_ENV: 'production' });
  });

  it('gives the same result as the working tree at the same content', async () => {
    const r = await repo();
    writeProject(r, 'blog', { manifest: { aliases: ['www.blog.localhost'] } });
    writeProject(r, 'shop', { manifest: { hostname: 'blog.localhost' } });
    writeProject(r, 'wiki', { manifest: { schema: 'model/schema.ts' } });
    r.write('projects/wiki/model/schema.ts', 'export interface Page { id: string; }\n');
    const c1 = r.commit('three projects, one conflict');
    const fromGit = await createCommitReader(r.dir).read(c1);
    const fromDisk = await readWorktree(r.dir);
    expect({ ...fromDisk, commit: c1, projects: fromDisk.projects.map((p) => ({ ...p, commit: c1 })) })
      .toEqual(fromGit);
    expect(fromGit.invalid.map((p) => p.id)).toEqual(['blog', 'shop']);
    expect(fromGit.projects.map((p) => p.schema.path)).toEqual(['projects/wiki/model/schema.ts']);
  });

  it('re-checks a folder renamed with the same content (the id must match the folder)', async () => {
    const r = await repo();
    writeProject(r, 'blog');
    const c1 = r.commit('add blog');
    r.git('mv', 'projects/blog', 'projects/journal');
    const c2 = r.commit('rename folder');
    const reader = createCommitReader(r.dir);
    await reader.read(c1);
    const read = await reader.read(c2);
    expect(reader.stats.projectParses).toBe(2);
    expect(read.invalid[0].errors[0]).toMatchObject({ path: '/id', message: expect.stringContaining('"journal"') });
  });

  it('reports a missing fleet.yaml and a folder without project.yaml', async () => {
    const r = await repo();
    r.write('projects/orphan/schema.ts', 'export interface A { id: string; }\n');
    const c1 = r.commit('orphan');
    const read = await createCommitReader(r.dir).read(c1);
    expect(read.fleet).toBeNull();
    expect(read.fleetIssues[0]).toMatchObject({ file: 'fleet.yaml', message: expect.stringContaining('missing') });
    expect(read.invalid[0]).toMatchObject({ id: 'orphan', errors: [{ message: expect.stringContaining('project.yaml') }] });
  });

  it('reads a bare clone', async () => {
    const r = await repo();
    writeProject(r, 'blog');
    const c1 = r.commit('add blog');
    const bare = mkdtempSync(join(tmpdir(), 'fleet-bare-'));
    dirs.push(bare);
    execFileSync('git', ['clone', '-q', '--bare', r.dir, bare]);
    const read = await createCommitReader(bare).read('main');
    expect(read.commit).toBe(c1);
    expect(read.projects.map((p) => p.id)).toEqual(['blog']);
  });

  it('fails with a GIT error on an unknown commit', async () => {
    const r = await repo();
    writeProject(r, 'blog');
    r.commit('add blog');
    const err = await createCommitReader(r.dir).read('0'.repeat(40)).catch((e: unknown) => e);
    expect(isFleetError(err, 'GIT')).toBe(true);
  });
});

describe('resolveRev', () => {
  it.each([
    ['HEAD', 2], ['main', 2], ['HEAD~1', 1], ['HEAD^', 1], ['main~2', 0], ['v1', 1], ['short', 1], ['long', 2],
  ])('%s', async (rev, index) => {
    const r = await repo();
    const shas = [0, 1, 2].map((i) => {
      writeProject(r, `p${i}`);
      return r.commit(`commit ${i}`);
    });
    r.git('tag', '-a', 'v1', '-m', 'release 1', shas[1]);
    const name = rev === 'short' ? shas[1].slice(0, 7) : rev === 'long' ? shas[2] : rev;
    expect(await resolveRev(r.dir, name)).toBe(shas[index]);
  });

  it.each(['nope', 'HEAD~5', 'deadbeef', ''])('rejects %j with a GIT error', async (rev) => {
    const r = await repo();
    writeProject(r, 'blog');
    r.commit('add blog');
    const err = await resolveRev(r.dir, rev).catch((e: unknown) => e);
    expect(isFleetError(err, 'GIT')).toBe(true);
  });
});

describe('schemaHistoryBefore', () => {
  it('lists earlier schema digests per project', async () => {
    const r = await repo();
    const v1 = 'export interface A { id: string; }\n';
    const v2 = 'export interface A { id: string; b: string; }\n';
    writeProject(r, 'blog', { schema: v1 });
    r.commit('v1');
    r.write('projects/blog/schema.ts', v2);
    r.commit('v2');
    r.write('projects/blog/schema.ts', v1);
    const c3 = r.commit('v1 again');
    const history = await schemaHistoryBefore(r.dir, createCommitReader(r.dir), c3);
    expect(history).toEqual({ blog: [sha256(v1), sha256(v2)] });
  });
});

/** Both readers on the same content: the commit (daemon) and the working tree (`fleet validate`). */
async function bothModes(r: TestRepo): Promise<[string, FleetRead][]> {
  const commit = r.commit('state under test');
  return [['commit', await createCommitReader(r.dir).read(commit)], ['worktree', await readWorktree(r.dir)]];
}

function errorsOf(read: FleetRead, id: string): string[] {
  const project = read.invalid.find((p) => p.id === id);
  expect(project, `${id} is not invalid; invalid: ${JSON.stringify(read.invalid.map((p) => p.id))}`).toBeDefined();
  return project!.errors.map(formatIssue);
}

describe('symlinks and submodules make only their project invalid, in both modes', () => {
  it('a schema.ts that is a symlink to /etc/passwd', async () => {
    const r = await repo();
    writeProject(r, 'blog');
    writeProject(r, 'shop');
    r.remove('projects/blog/schema.ts');
    symlinkSync('/etc/passwd', join(r.dir, 'projects/blog/schema.ts'));
    for (const [mode, read] of await bothModes(r)) {
      expect(errorsOf(read, 'blog'), mode).toEqual([
        'projects/blog/schema.ts: is a symlink; the fleet never follows links: commit the file itself',
      ]);
      expect(read.projects.map((p) => p.id), mode).toEqual(['shop']);
      expect(JSON.stringify(read), mode).not.toContain('root:');
    }
  });

  it('a project folder that is a symlink to another folder', async () => {
    const r = await repo();
    writeProject(r, 'blog');
    symlinkSync('blog', join(r.dir, 'projects/evil'));
    for (const [mode, read] of await bothModes(r)) {
      expect(errorsOf(read, 'evil'), mode).toEqual([
        'projects/evil: is a symlink; the fleet never follows links: make projects/evil a real folder',
      ]);
      expect(read.projects.map((p) => p.id), mode).toEqual(['blog']);
    }
  });

  it('projects/ itself a symlink: nothing under it is read, and both modes say why', async () => {
    const r = await repo();
    writeProject(r, 'blog');
    renameSync(join(r.dir, 'projects'), join(r.dir, 'elsewhere'));
    symlinkSync('elsewhere', join(r.dir, 'projects'));
    for (const [mode, read] of await bothModes(r)) {
      expect(read.fleetIssues.map(formatIssue), mode).toEqual([
        'projects: is a symlink; the fleet never follows links: make projects a real folder',
      ]);
      expect(read.projects, mode).toEqual([]);
      expect(read.fleet, mode).not.toBeNull();
    }
  });

  it('a symlink deep inside a project folder', async () => {
    const r = await repo();
    writeProject(r, 'blog');
    writeProject(r, 'shop');
    mkdirSync(join(r.dir, 'projects/blog/assets/img'), { recursive: true });
    writeFileSync(join(r.dir, 'projects/blog/assets/img/logo.txt'), 'logo');
    symlinkSync('../../../shop', join(r.dir, 'projects/blog/assets/img/up'));
    for (const [mode, read] of await bothModes(r)) {
      expect(errorsOf(read, 'blog'), mode).toEqual([
        'projects/blog/assets/img/up: is a symlink; the fleet never follows links: commit the file itself',
      ]);
      expect(read.projects.map((p) => p.id), mode).toEqual(['shop']);
    }
  });

  it('a schema path through a symlinked folder', async () => {
    const r = await repo();
    writeProject(r, 'blog', { manifest: { schema: 'model/schema.ts' } });
    mkdirSync(join(r.dir, 'outside'));
    writeFileSync(join(r.dir, 'outside/schema.ts'), 'export interface Secret { id: string; }\n');
    symlinkSync('../../outside', join(r.dir, 'projects/blog/model'));
    for (const [mode, read] of await bothModes(r)) {
      expect(errorsOf(read, 'blog'), mode).toContain(
        'projects/blog/model: is a symlink; the fleet never follows links: commit the file itself');
    }
  });

  it('a submodule as a project folder or inside one (commit mode)', async () => {
    const r = await repo();
    writeProject(r, 'blog');
    writeProject(r, 'shop');
    const c0 = r.commit('two projects');
    r.git('update-index', '--add', '--cacheinfo', `160000,${c0},projects/sub`);
    r.git('update-index', '--add', '--cacheinfo', `160000,${c0},projects/shop/vendor`);
    r.git('commit', '-q', '-m', 'submodules');
    const read = await createCommitReader(r.dir).read('HEAD');
    expect(errorsOf(read, 'sub')).toEqual([
      'projects/sub: is a git submodule; the fleet reads only files committed in this repository: make it a real folder',
    ]);
    expect(errorsOf(read, 'shop')).toEqual([
      'projects/shop/vendor: is a git submodule; the fleet reads only files committed in this repository: remove it',
    ]);
    expect(read.projects.map((p) => p.id)).toEqual(['blog']);
  });

  it('a nested git repository in a project folder (worktree mode)', async () => {
    const r = await repo();
    writeProject(r, 'blog');
    writeProject(r, 'shop');
    writeFileSync(join(r.dir, 'projects/shop/.git'), 'gitdir: ../../.git/modules/shop\n');
    const read = await readWorktree(r.dir);
    expect(errorsOf(read, 'shop')).toEqual([
      'projects/shop/.git: is a git submodule; the fleet reads only files committed in this repository: remove it',
    ]);
    expect(read.projects.map((p) => p.id)).toEqual(['blog']);
  });

  it('a named pipe in a project folder does not hang the worktree reader', async () => {
    const r = await repo();
    writeProject(r, 'blog');
    writeProject(r, 'shop');
    r.remove('projects/shop/schema.ts');
    execFileSync('mkfifo', [join(r.dir, 'projects/shop/schema.ts')]);
    const read = await readWorktree(r.dir);
    expect(errorsOf(read, 'shop')).toEqual([
      'projects/shop/schema.ts: is not a regular file or folder; remove it',
    ]);
    expect(read.projects.map((p) => p.id)).toEqual(['blog']);
  });
});

describe('a broken file breaks only its project', () => {
  it.each([
    ['a project.yaml that is not UTF-8', Buffer.from([0x69, 0x64, 0x3a, 0x20, 0xff, 0xfe, 0x0a]), /^projects\/shop\/project\.yaml: is not valid UTF-8/],
    ['a 10 MB project.yaml', Buffer.alloc(10 * 1024 * 1024, 0x61), /^projects\/shop\/project\.yaml: is larger than 64 KiB/],
    ['a project.yaml with a NUL byte', Buffer.from('id: shop\n\0\n'), /^projects\/shop\/project\.yaml:2:1: contains a NUL byte/],
    ['an alias bomb', Buffer.from('id: shop\nhostname: shop.localhost\na: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b]\n'), /^projects\/shop\/project\.yaml:3:7: \/a: sets the anchor &a/],
  ])('%s', async (_name, content, pattern) => {
    const r = await repo();
    writeProject(r, 'blog');
    writeProject(r, 'shop');
    writeFileSync(join(r.dir, 'projects/shop/project.yaml'), content);
    for (const [mode, read] of await bothModes(r)) {
      expect(errorsOf(read, 'shop')[0], mode).toMatch(pattern);
      expect(read.projects.map((p) => p.id), mode).toEqual(['blog']);
    }
  });

  it.each([
    ['not UTF-8', Buffer.from([0x62, 0x72, 0x61, 0x6e, 0x63, 0x68, 0x3a, 0x20, 0xc3, 0x28, 0x0a]), /^fleet\.yaml: is not valid UTF-8/],
    ['over 64 KiB', Buffer.from(`# ${'x'.repeat(70 * 1024)}\n`), /^fleet\.yaml: is larger than 64 KiB/],
    ['a NUL byte', Buffer.from('branch: main\0\n'), /^fleet\.yaml:1:13: contains a NUL byte/],
    ['a custom tag', Buffer.from('branch: !!js/function main\n'), /^fleet\.yaml:1:23: \/branch: has the tag "!!js\/function"/],
    ['a list', Buffer.from('- branch: main\n'), /^fleet\.yaml:1:1: must be a map/],
  ])('a fleet.yaml that is %s gives fleetIssues, not a throw', async (_name, content, pattern) => {
    const r = await repo();
    writeProject(r, 'blog');
    writeFileSync(join(r.dir, 'fleet.yaml'), content);
    for (const [mode, read] of await bothModes(r)) {
      expect(read.fleet, mode).toBeNull();
      expect(read.fleetIssues.map(formatIssue)[0], mode).toMatch(pattern);
      expect(read.projects.map((p) => p.id), mode).toEqual(['blog']);
    }
  });
});
