// Health probes on their own interval, side by side, apart from the pass. A pass never waits for the probe of an
// instance it did not just start, and what it records changes only when an instance's health does: the Health
// kept for an instance stays the same object (its `at` is when it last changed) until a probe says otherwise.
import type { Logger } from 'pino';
import type { Health } from '../health.ts';
import { mapLimit } from '../core/concurrency.ts';

export interface HealthMonitorOptions {
  probe: (upstream: string) => Promise<Health>;
  intervalMs: number;
  /** Probes in flight at once. */
  concurrency: number;
  log: Logger;
  /** An instance's health changed: the daemon looks at that project again. */
  onChange(id: string): void;
}

interface Known {
  upstream: string;
  health: Health;
}

/** Same health for the registry: the answer, not when it came. */
function sameHealth(a: Health, b: Health): boolean {
  return a.ok === b.ok && a.status === b.status && a.error === b.error;
}

export class HealthMonitor {
  private readonly known = new Map<string, Known>();
  /** Bumped whenever a known health changes or is forgotten: a pass that saw this version saw every health. */
  version = 0;
  private targets = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<void> | null = null;

  constructor(private readonly opts: HealthMonitorOptions) {}

  /** The instances to probe (project id → upstream); health known for any other upstream is forgotten. */
  setTargets(targets: Map<string, string>): void {
    this.targets = targets;
    for (const [id, k] of this.known) {
      if (targets.get(id) === k.upstream) continue;
      this.known.delete(id);
      this.version += 1;
    }
  }

  /** The last known health of `id` at `upstream`, or undefined when it was never probed there. */
  get(id: string, upstream: string): Health | undefined {
    const k = this.known.get(id);
    return k && k.upstream === upstream ? k.health : undefined;
  }

  /** Record a probe's answer; the Health to report (the earlier object when nothing changed), and whether it changed. */
  record(id: string, upstream: string, h: Health): { health: Health; changed: boolean } {
    const prev = this.known.get(id);
    const keep = prev && prev.upstream === upstream && sameHealth(prev.health, h);
    const health = keep ? prev.health : h;
    this.known.set(id, { upstream, health });
    if (!keep) this.version += 1;
    return { health, changed: !keep };
  }

  /** Probe now and record the answer. */
  async probe(id: string, upstream: string): Promise<Health> {
    return this.record(id, upstream, await this.opts.probe(upstream)).health;
  }

  /**
   * Probe `upstream` until it answers ready or `waitMs` passed or `gone()` says it exited: the wait for a
   * just-started instance, which is the instance's own start-to-ready time, not the daemon's work.
   */
  async waitReady(id: string, upstream: string, waitMs: number, gone: () => boolean): Promise<Health> {
    const until = Date.now() + waitMs;
    for (;;) {
      const h = await this.opts.probe(upstream);
      if (h.ok || Date.now() >= until || gone()) return this.record(id, upstream, h).health;
      await new Promise((r) => setTimeout(r, READY_POLL_MS));
    }
  }

  /** One round over every target, `concurrency` at a time; projects whose health changed are reported. */
  async probeAll(): Promise<void> {
    const targets = [...this.targets];
    await mapLimit(targets, this.opts.concurrency, async ([id, upstream]) => {
      const h = await this.opts.probe(upstream);
      // The target moved while the probe ran (a replacement, a stop): this answer is about the past.
      if (this.targets.get(id) !== upstream) return;
      if (this.record(id, upstream, h).changed) this.opts.onChange(id);
    });
  }

  start(): void {
    if (this.timer) return;
    const tick = () => {
      this.round = this.probeAll()
        .catch((err: unknown) => this.opts.log.warn({ err: { message: String(err) } }, 'health round failed'))
        .finally(() => {
          this.round = null;
          if (this.timer) this.timer = setTimeout(tick, this.opts.intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, this.opts.intervalMs).unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.round;
  }
}

/** How often a just-started instance is asked whether it is ready. */
const READY_POLL_MS = 25;
