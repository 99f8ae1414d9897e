// The commit reader against real git repositories: reads objects without a checkout, caches by tree id.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isFleetError } from '../daemon/errors.ts';
import { createCommitReader, resolveRev, schemaHistoryBefore } from '../daemon/git/read.ts';
import { readWorktree } from '../daemon/git/worktree.ts';
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
