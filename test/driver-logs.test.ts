// `logs(id, { lines, follow })`: the instance's output as `fleet logs` and the dashboard read it. The process driver
// with a real child process writing its log file; the tail itself on files built byte by byte, hostile ones too.
import { afterAll, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import pino from 'pino';
import { createProcessDriver } from '../daemon/drivers/process.ts';
import { collectLines, tailFile } from '../daemon/drivers/log-file.ts';

const root = mkdtempSync(join(tmpdir(), 'driver-logs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const file = (content: string | Buffer) => {
  const p = join(root, `f${++n}.log`);
  writeFileSync(p, content);
  return p;
};

describe('tailFile', () => {
  it.each([
    ['a\nb\nc\n', 2, ['b', 'c']],
    ['a\nb\nc\n', 10, ['a', 'b', 'c']],
    ['a\nb\nc', 2, ['b', 'c']],
    ['a\r\nb\r\n', 5, ['a', 'b']],
    ['\n\n\n', 2, ['', '']],
    ['', 5, []],
    ['a\nb\n', 0, []],
  ])('%j, last %i lines → %j', async (content, lines, want) => {
    expect(await collectLines(tailFile(file(content), { lines }))).toEqual(want);
  });

  it('never follows a symlink: an instance that swaps its log for a link to another file shows nothing of it', async () => {
    const secret = file('another project\'s secret\n');
    const link = join(root, `link${++n}.log`);
    symlinkSync(secret, link);
    const got = await collectLines(tailFile(link, { lines: 10 })).catch((err: Error) => [err.message]);
    expect(got.join('\n')).not.toContain('secret');
  });

  it('a missing file is no lines, not an error', async () => {
    expect(await collectLines(tailFile(join(root, 'nope.log'), { lines: 10 }))).toEqual([]);
  });

  it('finds the last lines across read blocks, multi-byte characters included', async () => {
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${i} ${'é'.repeat(i % 50)} 🚀`);
    const got = await collectLines(tailFile(file(lines.join('\n') + '\n'), { lines: 1234 }));
    expect(got).toEqual(lines.slice(-1234));
  });

  it('any content: the tail is the last N lines split on \\n', async () => {
    await fc.assert(fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 300 }), fc.nat(20), async (content, lines) => {
      const parts = content.split('\n');
      if (parts.at(-1) === '') parts.pop();
      const want = lines === 0 ? [] : parts.slice(-lines).map((l) => l.replace(/\r$/, ''));
      expect(await collectLines(tailFile(file(content), { lines }))).toEqual(want);
    }), { numRuns: 200 });
  });

  it('follows appended lines (a partial line waits for its newline), starts over after truncation, stops on abort', async () => {
    const p = file('old 1\nold 2\n');
    const ac = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      for await (const line of tailFile(p, { lines: 1, follow: true, signal: ac.signal, pollMs: 20 })) seen.push(line);
    })();
    await expect.poll(() => seen).toEqual(['old 2']);
    appendFileSync(p, 'new 1\nnew ');
    await expect.poll(() => seen).toEqual(['old 2', 'new 1']);
    appendFileSync(p, '2\n');
    await expect.poll(() => seen).toEqual(['old 2', 'new 1', 'new 2']);
    // Truncated and rewritten shorter than what was read: the tail starts over from the top.
    truncateSync(p, 0);
    appendFileSync(p, 'after\n');
    await expect.poll(() => seen.at(-1)).toBe('after');
    ac.abort();
    await done;
  });
});

describe('process driver logs', () => {
  it('reads the instance log of a real process, and follows it', async () => {
    const stateDir = join(root, 'state', 'instances');
    const d = createProcessDriver({ stateDir, log: pino({ level: 'silent' }) });
    const logDir = join(root, 'state', 'projects', 'talker', 'logs');
    const script = 'console.log("hello <b>&"); let i = 0; setInterval(() => console.log("tick " + i++), 50)';
    await d.start({
      id: 'talker', commit: 'c0ffee1', command: [process.execPath, '-e', script], env: {}, schemaPath: join(root, 'schema.ts'),
      port: 1, resources: {}, specHash: 'h', logDir,
    });
    try {
      // The default log folder is the daemon's layout: <state>/projects/<id>/logs beside <state>/instances.
      await expect.poll(async () => (await collectLines(d.logs!('talker', { lines: 100 }))).slice(0, 2)).toEqual(['hello <b>&', 'tick 0']);
      const last = await collectLines(d.logs!('talker', { lines: 1 }));
      expect(last).toHaveLength(1);
      expect(last[0]).toMatch(/^tick \d+$/);
      const ac = new AbortController();
      const followed: string[] = [];
      const done = (async () => {
        for await (const line of d.logs!('talker', { lines: 0, follow: true, signal: ac.signal })) followed.push(line);
      })();
      await expect.poll(() => followed.length, { timeout: 5000 }).toBeGreaterThan(2);
      ac.abort();
      await done;
      expect(followed.every((l) => /^tick \d+$/.test(l))).toBe(true);
      expect(await collectLines(d.logs!('nobody', { lines: 10 }))).toEqual([]);
    } finally {
      await d.stop('talker');
    }
  });
});
