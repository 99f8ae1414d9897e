// Restart pacing for instances that should run but do not: capped exponential backoff for crashes, an immediate
// start for an exit with code 0 (the atomo schema watcher's "start me again"), which never counts as a crash.
// The pacing belongs to one spec: a different spec (a fix committed during a crash loop) starts afresh.

export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  /** Consecutive crashes after which the project is reported Stalled. */
  stallAfter: number;
  /** An instance healthy this long after its start has its crash count forgiven. */
  stableMs: number;
}

interface State {
  failures: number;
  nextAt: number;
  running: boolean;
  startedAt: number;
  /** The spec last tried, when the caller says. */
  specHash?: string;
}

export type StartDecision = { start: true } | { start: false; waitMs: number };

export class Backoff {
  private readonly states = new Map<string, State>();

  constructor(private readonly opts: BackoffOptions = { baseMs: 1000, capMs: 60_000, stallAfter: 3, stableMs: 10_000 }) {}

  private state(id: string): State {
    let s = this.states.get(id);
    if (!s) this.states.set(id, (s = { failures: 0, nextAt: 0, running: false, startedAt: 0 }));
    return s;
  }

  /** The instance should run but does not; `exitCode` is its last exit when known. */
  decide(id: string, exitCode: number | null | undefined, now: number): StartDecision {
    const s = this.state(id);
    if (s.running) {
      // It was ours and it stopped: classify the exit once.
      s.running = false;
      if (exitCode === 0) s.nextAt = now;
      else {
        s.failures += 1;
        s.nextAt = now + Math.min(this.opts.baseMs * 2 ** (s.failures - 1), this.opts.capMs);
      }
    }
    return now >= s.nextAt ? { start: true } : { start: false, waitMs: s.nextAt - now };
  }

  /** Forget the pacing when `specHash` is not the spec last tried: a new spec is not the crash being paced. */
  forSpec(id: string, specHash: string): void {
    const last = this.states.get(id)?.specHash;
    if (last !== undefined && last !== specHash) this.states.delete(id);
  }

  started(id: string, now: number, specHash?: string): void {
    const s = this.state(id);
    s.running = true;
    s.startedAt = now;
    if (specHash !== undefined) s.specHash = specHash;
  }

  healthy(id: string, now: number): void {
    const s = this.state(id);
    if (s.running && now - s.startedAt >= this.opts.stableMs) s.failures = 0;
  }

  /** A start attempt that threw (bad image, port taken): counts like a crash. */
  failedStart(id: string, now: number, specHash?: string): void {
    const s = this.state(id);
    if (specHash !== undefined) s.specHash = specHash;
    s.running = false;
    s.failures += 1;
    s.nextAt = now + Math.min(this.opts.baseMs * 2 ** (s.failures - 1), this.opts.capMs);
  }

  failures(id: string): number {
    return this.states.get(id)?.failures ?? 0;
  }

  stalled(id: string): boolean {
    return this.failures(id) >= this.opts.stallAfter;
  }

  forget(id: string): void {
    this.states.delete(id);
  }
}
