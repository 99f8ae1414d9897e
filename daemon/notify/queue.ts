// A bounded delivery queue per receiver, drained in the background: a pass only pushes. Messages go out in order;
// a failed one is retried with capped exponential backoff (a receiver's Retry-After wins, up to the cap) while the
// ones behind it wait, so one receiver down never delays another. Full → the oldest message is dropped and counted.
import type { Logger } from 'pino';

/** What one attempt came to. `retry`: worth trying again (5xx, 408, 429, network); else given up at once (4xx). */
export type Attempt = { ok: true } | { ok: false; retry: boolean; reason: string; retryAfterMs?: number };

export interface Job {
  /** What the job is, for the log (never a URL: webhook URLs hold credentials). */
  what: string;
  send(): Promise<Attempt>;
}

export interface QueueOptions {
  receiver: string;
  log: Logger;
  max?: number;
  baseMs?: number;
  capMs?: number;
  /** Attempts per message, the first included. */
  attempts?: number;
  onResult?(result: 'sent' | 'retried' | 'dropped'): void;
}

export class DeliveryQueue {
  private readonly jobs: { job: Job; attempt: number }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private draining = false;
  private closed = false;
  private readonly max: number;
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly attempts: number;

  constructor(private readonly o: QueueOptions) {
    this.max = o.max ?? 100;
    this.baseMs = o.baseMs ?? 2000;
    this.capMs = o.capMs ?? 5 * 60_000;
    this.attempts = o.attempts ?? 8;
  }

  get length(): number {
    return this.jobs.length;
  }

  push(job: Job): void {
    if (this.closed) return;
    this.jobs.push({ job, attempt: 0 });
    if (this.jobs.length > this.max) {
      // The oldest one not being sent right now (the head is in flight while draining).
      const [old] = this.jobs.splice(this.draining ? 1 : 0, 1);
      this.o.onResult?.('dropped');
      this.o.log.warn({ receiver: this.o.receiver, dropped: old.job.what }, 'notification queue full: dropped the oldest message');
    }
    void this.drain();
  }

  /** Stop: pending messages are not sent (they are not kept across restarts). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async drain(): Promise<void> {
    if (this.draining || this.timer || this.closed) return;
    this.draining = true;
    try {
      while (this.jobs.length && !this.closed) {
        const head = this.jobs[0];
        const r = await head.job.send().catch((err: unknown): Attempt => ({ ok: false, retry: true, reason: (err as { code?: string })?.code ?? 'send failed' }));
        if (r.ok) {
          this.jobs.shift();
          this.o.onResult?.('sent');
          continue;
        }
        head.attempt += 1;
        if (!r.retry || head.attempt >= this.attempts) {
          this.jobs.shift();
          this.o.onResult?.('dropped');
          this.o.log.warn({ receiver: this.o.receiver, what: head.job.what, attempts: head.attempt, reason: r.reason }, `notification not delivered, given up: ${r.reason}`);
          continue;
        }
        const backoff = Math.min(this.baseMs * 2 ** (head.attempt - 1), this.capMs);
        const waitMs = Math.min(r.retryAfterMs ?? backoff, this.capMs);
        this.o.onResult?.('retried');
        this.o.log.info({ receiver: this.o.receiver, what: head.job.what, attempt: head.attempt, retryInMs: waitMs, reason: r.reason }, 'notification not delivered yet; retrying');
        this.timer = setTimeout(() => {
          this.timer = null;
          void this.drain();
        }, waitMs);
        this.timer.unref();
        return;
      }
    } finally {
      this.draining = false;
    }
  }
}
