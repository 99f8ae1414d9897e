// The worktree watcher on a real directory with real chokidar, and the poll loop under fake timers.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createPoller, isWatchedPath, watchWorktree, type Poller, type Watcher } from '../daemon/git/watch.ts';

describe('isWatchedPath', () => {
  it.each([
    ['', true],
    ['fleet.yaml', true],
    ['projects', true],
    ['projects/acme/project.yaml', true],
    ['projects/acme/schema.ts', true],
    ['projects/acme/node_modules/x/index.js', false],
    ['.git', false],
    ['.git/refs/heads/main', false],
    ['node_modules/pg/index.js', false],
    ['README.md', false],
    ['daemon/types.ts', false],
    ['fleet.yaml.bak', false],
    ['../elsewhere/fleet.yaml', false],
  ])('%s → %s', (path, expected) => {
    expect(isWatchedPath('/repo', path)).toBe(expected);
    expect(isWatchedPath('/repo', join('/repo', path))).toBe(expected);
  });
});

describe('watchWorktree', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  it('fires once for a burst of saves, after the last of them, and never for ignored paths', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-watch-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    for (const sub of ['projects/acme', '.git', 'node_modules/pg']) mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, 'fleet.yaml'), 'branch: main\n');

    // One sequence number across events and fires tells their order without relying on wall time.
    let seq = 0;
    const events: Array<{ path: string; at: number }> = [];
    const fires: number[] = [];
    const watcher: Watcher = watchWorktree(dir, () => fires.push(++seq), {
      debounceMs: 150,
      onEvent: (_event, path) => events.push({ path, at: ++seq }),
    });
    cleanups.push(() => watcher.close());
    await watcher.ready;

    const burst = ['projects/acme/project.yaml', 'projects/acme/schema.ts', 'projects/beta/project.yaml', 'fleet.yaml'];
    mkdirSync(join(dir, 'projects/beta'));
    for (const file of burst) writeFileSync(join(dir, file), `${file}\n`);
    writeFileSync(join(dir, '.git/index'), 'x');
    writeFileSync(join(dir, 'node_modules/pg/index.js'), 'x');
    writeFileSync(join(dir, 'README.md'), 'x');

    const lastBurstEvent = () =>
      Math.max(...burst.map((file) => events.filter((e) => e.path === file).at(-1)?.at ?? Infinity));
    await expect.poll(() => fires.some((at) => at > lastBurstEvent()), { timeout: 10_000 }).toBe(true);
    expect(fires).toHaveLength(1);
    const seen = events.map((e) => e.path);
    expect(seen.filter((p) => p.startsWith('.git') || p.startsWith('node_modules') || p === 'README.md')).toEqual([]);

    // A later save is a new burst.
    writeFileSync(join(dir, 'projects/acme/schema.ts'), 'changed\n');
    await expect.poll(() => fires.length, { timeout: 10_000 }).toBe(2);
  });
});

describe('createPoller', () => {
  const pollers: Poller[] = [];
  const openGates: Array<() => void> = [];
  afterEach(async () => {
    // Stop first (no new ticks), then let any tick a test left waiting finish, so stop() resolves.
    const stops = pollers.splice(0).map((p) => p.stop());
    for (const open of openGates.splice(0)) open();
    await vi.advanceTimersByTimeAsync(0);
    await Promise.all(stops);
    vi.useRealTimers();
  });

  /** A tick function whose runs the test releases one by one. */
  function controlledTicks() {
    const gates: Array<() => void> = [];
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const fn = () => {
      runs++;
      active++;
      maxActive = Math.max(maxActive, active);
      return new Promise<void>((release) =>
        gates.push(() => {
          active--;
          release();
        }),
      );
    };
    const releaseOne = async () => {
      gates.shift()!();
      await vi.advanceTimersByTimeAsync(0);
    };
    openGates.push(() => {
      while (gates.length) gates.shift()!();
    });
    return { fn, releaseOne, runs: () => runs, maxActive: () => maxActive, waiting: () => gates.length };
  }

  function poller(fn: () => Promise<void> | void, opts: Partial<Parameters<typeof createPoller>[1]> = {}) {
    const p = createPoller(fn, { intervalMs: 1000, jitter: 0, ...opts });
    pollers.push(p);
    return p;
  }

  it('runs at once on start, then every interval, and never overlaps a slow tick', async () => {
    vi.useFakeTimers();
    const t = controlledTicks();
    const p = poller(t.fn);
    p.start();
    p.start();
    expect(t.runs()).toBe(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(t.runs()).toBe(1);
    await t.releaseOne();
    await vi.advanceTimersByTimeAsync(999);
    expect(t.runs()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.runs()).toBe(2);
    expect(t.maxActive()).toBe(1);
  });

  it('kick() during a run causes exactly one more run right after it', async () => {
    vi.useFakeTimers();
    const t = controlledTicks();
    const p = poller(t.fn);
    p.start();
    p.kick();
    p.kick();
    p.kick();
    expect(t.runs()).toBe(1);
    await t.releaseOne();
    expect(t.runs()).toBe(2);
    await t.releaseOne();
    await vi.advanceTimersByTimeAsync(999);
    expect(t.runs()).toBe(2);
    expect(t.maxActive()).toBe(1);
  });

  it('kick() when idle runs at once and restarts the interval', async () => {
    vi.useFakeTimers();
    const t = controlledTicks();
    const p = poller(t.fn);
    p.kick(); // before start: nothing to kick
    expect(t.runs()).toBe(0);
    p.start();
    await t.releaseOne();
    await vi.advanceTimersByTimeAsync(600);
    p.kick();
    expect(t.runs()).toBe(2);
    await t.releaseOne();
    await vi.advanceTimersByTimeAsync(999);
    expect(t.runs()).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.runs()).toBe(3);
  });

  it('reports a failing tick and keeps going, even when the error handler throws', async () => {
    vi.useFakeTimers();
    const errors: unknown[] = [];
    let runs = 0;
    const p = poller(
      () => {
        runs++;
        throw new Error(`tick ${runs} failed`);
      },
      {
        onError: (err) => {
          errors.push(err);
          throw new Error('handler broke too');
        },
      },
    );
    p.start();
    await vi.advanceTimersByTimeAsync(2000);
    expect(runs).toBe(3);
    expect(errors.map((e) => (e as Error).message)).toEqual(['tick 1 failed', 'tick 2 failed', 'tick 3 failed']);
  });

  it('stop() waits for the in-flight tick, is idempotent, and ends the loop', async () => {
    vi.useFakeTimers();
    const t = controlledTicks();
    const p = poller(t.fn);
    p.start();
    p.kick(); // a pending kick must not run after stop
    let stopped = 0;
    const first = p.stop().then(() => stopped++);
    const second = p.stop().then(() => stopped++);
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(0);
    await t.releaseOne();
    await Promise.all([first, second]);
    expect(stopped).toBe(2);
    p.kick();
    p.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(t.runs()).toBe(1);
    expect(t.waiting()).toBe(0);
  });

  it('stop() gives up on a hung tick after its timeout', async () => {
    vi.useFakeTimers();
    const p = poller(() => new Promise<void>(() => {}), { stopTimeoutMs: 5000 });
    p.start();
    let done = false;
    const stopping = p.stop().then(() => (done = true));
    await vi.advanceTimersByTimeAsync(4999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await stopping;
    expect(done).toBe(true);
  });

  it.each([
    [0, 900],
    [0.5, 1000],
    [0.999999, 1100],
  ])('jitter 0.1 with random %s waits about %s ms', async (r, expected) => {
    vi.useFakeTimers();
    let runs = 0;
    const p = poller(() => void runs++, { jitter: 0.1, random: () => r });
    p.start();
    await vi.advanceTimersByTimeAsync(expected - 1);
    expect(runs).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toBe(2);
  });
});
