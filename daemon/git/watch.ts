// The signals that say "look again now": a working-tree watcher (--watch-worktree) and the poll loop that
// webhooks and the watcher kick. Level-based: a signal only triggers a pass, so losing one loses nothing.
import { relative, resolve, sep } from 'node:path';
import { watch } from 'chokidar';
import { describe } from '../core/errors.ts';

export interface WatchOptions {
  /** Quiet time after the last file event before onChange fires (default 300 ms). */
  debounceMs?: number;
  /** Each relevant file event, e.g. for a debug log line; path is relative to the repo. */
  onEvent?: (event: string, path: string) => void;
  onError?: (err: unknown) => void;
}

export interface Watcher {
  /** Resolves once the initial scan is done: edits after this are seen. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/** True for the paths a fleet change can live in: `fleet.yaml` and everything under `projects/`. */
export function isWatchedPath(repoDir: string, path: string): boolean {
  const rel = relative(resolve(repoDir), resolve(repoDir, path));
  if (rel === '') return true; // the root itself, so the watcher descends into it
  const parts = rel.split(sep);
  if (parts[0] === '..' || parts.includes('.git') || parts.includes('node_modules')) return false;
  return parts[0] === 'projects' || rel === 'fleet.yaml';
}

/** Calls onChange once per burst of saves under projects/ or to fleet.yaml. */
export function watchWorktree(repoDir: string, onChange: () => void, opts: WatchOptions = {}): Watcher {
  const root = resolve(repoDir);
  const debounceMs = opts.debounceMs ?? 300;
  const onError = opts.onError ?? defaultOnError;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  // chokidar 4+ has no globs: an ignore function keeps it out of every other folder.
  const watcher = watch(root, { ignoreInitial: true, ignored: (path) => !isWatchedPath(root, path) });
  const fire = () => {
    timer = undefined;
    if (closed) return;
    try {
      onChange();
    } catch (err) {
      onError(err);
    }
  };
  watcher.on('all', (event, path) => {
    if (closed) return;
    opts.onEvent?.(event, relative(root, path));
    clearTimeout(timer);
    timer = setTimeout(fire, debounceMs);
  });
  watcher.on('error', onError);
  const ready = new Promise<void>((done) => watcher.once('ready', () => done()));
  return {
    ready,
    close: async () => {
      closed = true;
      clearTimeout(timer);
      await watcher.close();
    },
  };
}

export interface PollerOptions {
  intervalMs: number;
  /** Fraction of the interval added or removed at random, so many daemons do not fetch in step (default 0.1). */
  jitter?: number;
  /** A failed tick is reported here; the loop goes on. */
  onError?: (err: unknown) => void;
  /** How long stop() waits for the in-flight tick (default 10 s). */
  stopTimeoutMs?: number;
  /** For tests: a number in [0, 1). */
  random?: () => number;
}

export interface Poller {
  /** Runs a first tick now, then one per interval. A second call does nothing. */
  start(): void;
  /** "Look again now": runs a tick at once, or exactly one more after the running one. */
  kick(): void;
  /** No new ticks; waits for the in-flight one (up to stopTimeoutMs). Safe to call twice. */
  stop(): Promise<void>;
}

/** A loop that never overlaps and never dies. */
export function createPoller(fn: () => Promise<void> | void, opts: PollerOptions): Poller {
  const jitter = opts.jitter ?? 0.1;
  const random = opts.random ?? Math.random;
  const onError = opts.onError ?? defaultOnError;
  let started = false;
  let stopping: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> | undefined;
  let again = false;

  const nextDelay = () => Math.max(0, Math.round(opts.intervalMs * (1 + jitter * (2 * random() - 1))));

  const tick = async () => {
    try {
      await fn();
    } catch (err) {
      report(onError, err);
    }
  };

  const run = () => {
    clearTimeout(timer);
    timer = undefined;
    again = false;
    inflight = tick().then(() => {
      inflight = undefined;
      if (stopping) return;
      if (again) run();
      else timer = setTimeout(run, nextDelay());
    });
  };

  return {
    start() {
      if (started || stopping) return;
      started = true;
      run();
    },
    kick() {
      if (!started || stopping) return;
      if (inflight) again = true;
      else run();
    },
    stop() {
      stopping ??= drain(inflight, opts.stopTimeoutMs ?? 10_000);
      clearTimeout(timer);
      timer = undefined;
      return stopping;
    },
  };
}

async function drain(inflight: Promise<void> | undefined, timeoutMs: number): Promise<void> {
  if (!inflight) return;
  let timeout: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((done) => {
    timeout = setTimeout(done, timeoutMs);
    timeout.unref();
  });
  await Promise.race([inflight, expired]);
  clearTimeout(timeout);
}

function report(onError: (err: unknown) => void, err: unknown): void {
  try {
    onError(err);
  } catch {
    // A failing error handler must not kill the loop.
  }
}

function defaultOnError(err: unknown): void {
  console.error(`fleet: ${describe(err)}`);
}
