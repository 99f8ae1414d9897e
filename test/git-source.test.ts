// Git sources against real repositories: a local checkout, and a bare repo served by real `git http-backend`.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGitSource, createLocalSource, createRemoteSource, type GitSource } from '../daemon/git/source.ts';
import { FleetError, isFleetError } from '../daemon/core/errors.ts';
import { createRepo, type TestRepo } from './harness/git.ts';
import { startGitHttp, type GitHttpServer } from './harness/git-http.ts';

const execFileAsync = promisify(execFile);
const TOKEN = 'ghs_secretTokenValue123';
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function newRepo(): Promise<TestRepo> {
  const repo = await createRepo();
  cleanups.push(() => repo.cleanup());
  return repo;
}

/** A logger whose output the test can search (for leaked tokens). */
function capturedLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), text: () => lines.join('') };
}

async function failure(p: Promise<unknown>): Promise<FleetError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FleetError);
  return err as FleetError;
}

describe('local source', () => {
  it('reports the branch head and author, and whether it moved', async () => {
    const repo = await newRepo();
    repo.write('fleet.yaml', 'branch: main\n');
    const first = repo.commit('first', { author: 'Ada Lovelace <ada@example.com>' });
    const source = createLocalSource({ repoDir: repo.dir, branch: 'main' });

    expect(await source.sync()).toEqual({ head: first, author: 'Ada Lovelace <ada@example.com>', changed: true });
    expect(await source.sync()).toMatchObject({ head: first, changed: false });

    repo.write('projects/acme/project.yaml', 'id: acme\n');
    const second = repo.commit('second');
    expect(await source.sync()).toEqual({ head: second, author: 'Fleet Test <fleet-test@example.com>', changed: true });
    expect((await source.sync()).changed).toBe(false);
    await source.close();
  });

  it('fails with a GIT error naming the branch when it does not exist', async () => {
    const repo = await newRepo();
    repo.commit('empty', { allowEmpty: true });
    const err = await failure(createLocalSource({ repoDir: repo.dir, branch: 'nope' }).sync());
    expect(err.code).toBe('GIT');
    expect(err.message).toContain('branch nope');
  });
});

describe('createGitSource', () => {
  it('builds a known kind and lists the known kinds for an unknown one', async () => {
    const repo = await newRepo();
    const head = repo.commit('one', { allowEmpty: true });
    expect((await createGitSource('local', { repoDir: repo.dir, branch: 'main' }).sync()).head).toBe(head);

    let err: unknown;
    try {
      createGitSource('svn', { repoDir: repo.dir, branch: 'main' });
    } catch (e) {
      err = e;
    }
    expect(isFleetError(err, 'UNKNOWN_COMPONENT')).toBe(true);
    expect((err as Error).message).toBe('unknown git source "svn": known sources are local, remote');
  });
});

describe('remote source over HTTP', () => {
  let root: string;
  let server: GitHttpServer;
  let work: TestRepo;
  let url: string;
  let token: string | undefined;
  let logs: ReturnType<typeof capturedLogger>;
  const sources: GitSource[] = [];

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'fleet-git-root-'));
    server = await startGitHttp({ root, token: TOKEN });
  });
  afterAll(async () => {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  });

  beforeEach(async () => {
    token = TOKEN;
    logs = capturedLogger();
    // A working repo pushing to a bare repo under the server root (file path: the force-push is the point).
    work = await newRepo();
    work.write('fleet.yaml', 'branch: main\n');
    work.commit('initial');
    const name = `fleet-${Math.random().toString(36).slice(2)}.git`;
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', join(root, name)]);
    work.git('remote', 'add', 'origin', join(root, name));
    work.git('push', '-q', 'origin', 'main');
    cleanups.push(() => rmSync(join(root, name), { recursive: true, force: true }));
    url = server.url(name);
  });
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.close();
  });

  function remote(dir: string, repoUrl = url): GitSource {
    const source = createRemoteSource({ url: repoUrl, branch: 'main', dir, token: async () => token, log: logs.log });
    sources.push(source);
    return source;
  }

  it('clones with the token, without checkout, and keeps the token out of .git/config', async () => {
    const dir = tempDir('fleet-clone-');
    const result = await remote(dir).sync();
    expect(result).toEqual({ head: work.head(), author: 'Fleet Test <fleet-test@example.com>', changed: true });
    expect(existsSync(join(dir, 'fleet.yaml'))).toBe(false);
    expect(readFileSync(join(dir, '.git', 'config'), 'utf8')).not.toContain(TOKEN);
    expect(logs.text()).not.toContain(TOKEN);
  });

  it('fails with a clear GIT error for a wrong token, without printing the token, and leaves no half clone', async () => {
    const dir = tempDir('fleet-clone-');
    token = 'wrong-token-do-not-print';
    const err = await failure(remote(dir).sync());
    expect(err.code).toBe('GIT');
    expect(err.message).toMatch(new RegExp(`^cannot fetch ${url} branch main: .*401.*check that the token`));
    expect(err.message + String(err.stack)).not.toContain('wrong-token-do-not-print');
    expect(logs.text()).not.toContain('wrong-token-do-not-print');
    expect(existsSync(join(dir, '.git'))).toBe(false);
  });

  it('refuses a URL with credentials without echoing them', async () => {
    const withCreds = url.replace('http://', `http://x:${TOKEN}@`);
    let err: unknown;
    try {
      remote(tempDir('fleet-clone-'), withCreds);
    } catch (e) {
      err = e;
    }
    expect(isFleetError(err, 'INVALID_CONFIG')).toBe(true);
    expect((err as Error).message).not.toContain(TOKEN);
  });

  it('sees a newly pushed commit, and keeps the last good state when a fetch fails', async () => {
    const dir = tempDir('fleet-clone-');
    const source = remote(dir);
    const first = (await source.sync()).head;
    expect((await source.sync()).changed).toBe(false);

    work.write('projects/acme/project.yaml', 'id: acme\n');
    const second = work.commit('add acme', { author: 'Bob <bob@example.com>' });
    work.git('push', '-q', 'origin', 'main');

    token = 'expired';
    expect((await failure(source.sync())).code).toBe('GIT');
    expect(readLocalRef(dir, 'refs/remotes/origin/main')).toBe(first);

    token = TOKEN;
    expect(await source.sync()).toEqual({ head: second, author: 'Bob <bob@example.com>', changed: true });
    expect(readLocalRef(dir, 'refs/heads/main')).toBe(second);
  });

  it('follows a force-push back to an older commit', async () => {
    const source = remote(tempDir('fleet-clone-'));
    const first = work.head();
    work.write('projects/acme/project.yaml', 'id: acme\n');
    const second = work.commit('add acme');
    work.git('push', '-q', 'origin', 'main');
    expect((await source.sync()).head).toBe(second);

    work.resetHard(first);
    work.git('push', '-q', '--force', 'origin', 'main');
    expect(await source.sync()).toMatchObject({ head: first, changed: true });
  });

  it('reuses its clone when re-created on the same dir', async () => {
    const dir = tempDir('fleet-clone-');
    const head = (await remote(dir).sync()).head;
    // A marker inside .git survives only if the second source fetches into the clone instead of re-cloning.
    writeFileSync(join(dir, '.git', 'marker'), 'kept');

    const again = remote(dir);
    expect(await again.sync()).toMatchObject({ head, changed: true });
    expect(readFileSync(join(dir, '.git', 'marker'), 'utf8')).toBe('kept');

    work.write('projects/beta/project.yaml', 'id: beta\n');
    const next = work.commit('add beta');
    work.git('push', '-q', 'origin', 'main');
    expect(await again.sync()).toMatchObject({ head: next, changed: true });
  });

  it('says the branch does not exist when the remote has no such branch', async () => {
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', join(root, 'empty.git')]);
    cleanups.push(() => rmSync(join(root, 'empty.git'), { recursive: true, force: true }));
    const err = await failure(remote(tempDir('fleet-clone-'), server.url('empty.git')).sync());
    expect(err.code).toBe('GIT');
    expect(err.message).toBe(`branch main does not exist at ${server.url('empty.git')}: push a commit to it or set \`branch\` in fleet.yaml`);
  });

  it('harness: the git CLI pushes over HTTP with the token and is refused without it', async () => {
    const withToken = url.replace('http://', `http://x:${TOKEN}@`);
    work.write('projects/acme/project.yaml', 'id: acme\n');
    const next = work.commit('over http');
    const env = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };
    // Async exec: the server runs in this process, a sync child would block it.
    await expect(
      execFileAsync('git', ['push', '-q', url.replace('http://', 'http://x:wrong@'), 'main'], { cwd: work.dir, env }),
    ).rejects.toThrow(/Authentication failed/);
    await execFileAsync('git', ['push', '-q', withToken, 'main'], { cwd: work.dir, env });
    const { stdout } = await execFileAsync('git', ['ls-remote', withToken, 'refs/heads/main'], { env });
    expect(stdout.split('\t')[0]).toBe(next);
  });

  it('refuses to clone over a repository that is not its clone', async () => {
    const other = await newRepo();
    const err = await failure(remote(other.dir).sync());
    expect(err.code).toBe('GIT');
    expect(err.message).toContain('without remote "origin"');
    expect(existsSync(join(other.dir, '.git'))).toBe(true);
  });
});

function readLocalRef(dir: string, ref: string): string {
  return execFileSync('git', ['rev-parse', ref], { cwd: dir, encoding: 'utf8' }).trim();
}
