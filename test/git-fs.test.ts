// The file system isomorphic-git reads through (daemon/git/git-fs.ts) answers its reads from the calling thread:
// on a busy machine every trip through libuv's thread pool waits behind whatever else holds it (crypto, file
// reads, DNS), and isomorphic-git makes several per object it reads (a stat of .git before each command, a
// listing of objects/pack for each packed object). Here the pool is held by slow key derivations: a read that
// needs the pool cannot finish before one of them does.
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { pbkdf2 } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gitFs } from '../daemon/git/git-fs.ts';

const dir = mkdtempSync(join(tmpdir(), 'fleet-git-fs-'));
mkdirSync(join(dir, 'objects', 'pack'), { recursive: true });
writeFileSync(join(dir, 'HEAD'), 'ref: refs/heads/main\n');
symlinkSync('HEAD', join(dir, 'link'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `read` while every thread of the pool is busy; how many pool jobs finished before `read` did. */
async function whilePoolBusy(read: () => Promise<unknown>): Promise<number> {
  const size = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  let finished = 0;
  // Each takes hundreds of milliseconds: far longer than any answer from the calling thread.
  const jobs = Array.from({ length: size }, () => new Promise<void>((resolve) => {
    pbkdf2('x', 'salt', 400_000, 64, 'sha512', () => {
      finished += 1;
      resolve();
    });
  }));
  await read();
  const before = finished;
  await Promise.all(jobs);
  return before;
}

describe('git-fs: reads isomorphic-git makes do not wait for the thread pool', () => {
  it.each([
    ['readFile', () => gitFs.promises.readFile(join(dir, 'HEAD'))],
    ['stat', () => gitFs.promises.stat(dir)],
    ['lstat', () => gitFs.promises.lstat(join(dir, 'link'))],
    ['readdir', () => gitFs.promises.readdir(join(dir, 'objects'))],
    ['readlink', () => gitFs.promises.readlink(join(dir, 'link'))],
  ])('%s', async (_name, read) => {
    expect(await whilePoolBusy(read)).toBe(0);
  });

  it('answers as node does, a missing file included', async () => {
    expect(String(await gitFs.promises.readFile(join(dir, 'HEAD'), 'utf8'))).toBe('ref: refs/heads/main\n');
    expect((await gitFs.promises.stat(dir)).isDirectory()).toBe(true);
    expect((await gitFs.promises.lstat(join(dir, 'link'))).isSymbolicLink()).toBe(true);
    expect(await gitFs.promises.readdir(join(dir, 'objects'))).toEqual(['pack']);
    expect(await gitFs.promises.readlink(join(dir, 'link'))).toBe('HEAD');
    await expect(gitFs.promises.stat(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(gitFs.promises.readFile(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('the control: a read through the pool does wait', async () => {
    // Without this the test above could pass with a pool that is never busy.
    const { stat } = await import('node:fs/promises');
    expect(await whilePoolBusy(() => stat(dir))).toBeGreaterThan(0);
  });
});
