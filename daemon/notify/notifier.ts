// Notifications (fleet.yaml `notify:`): after each pass, what changed is decided from the rows and the read the
// pass already holds (decide.ts) and pushed to per-receiver queues drained in the background (queue.ts). A pass
// never waits for a receiver. What receivers last heard is kept in the registry (fleet_state `notify`), so a
// daemon restart tells nothing twice; messages still queued when the daemon stops are not kept.
import type { Logger } from 'pino';
import { describe, isFleetError } from '../core/errors.ts';
import type { NotifyConfig, SecretStore } from '../core/types.ts';
import type { FleetMetrics, StateStore } from '../metrics/metrics.ts';
import { decideBackup, decidePass, emptyMemory, type CommitStatus, type Notice, type NotifyMemory } from './decide.ts';
import type { FleetObserver, PassObservation } from './observer.ts';
import { DeliveryQueue, type Attempt } from './queue.ts';
import { jsonBody, slackBody, type Origin } from './render.ts';
import { postCommitStatus, postJson } from './send.ts';

const MEMORY_STATE = 'notify';
const GITHUB = 'github-status';

export interface NotifierOptions {
  log: Logger;
  secrets: Pick<SecretStore, 'get'>;
  /** The fleet repository, named in every message (credentials are removed). */
  repoUrl: string;
  metrics?: FleetMetrics;
  /** Retry pacing of a failed delivery (default 2 s doubling up to 5 min), and attempts per message (default 8). */
  retry?: { baseMs: number; capMs: number };
  attempts?: number;
  /** Messages a receiver's queue holds before the oldest is dropped (default 100). */
  maxQueue?: number;
}

export class Notifier implements FleetObserver {
  private memory: NotifyMemory | null = null;
  private store: StateStore | null = null;
  private saved = '';
  private config: NotifyConfig | undefined;
  /** The last pass decided on (a pass with the same rows and read has nothing new to tell). */
  private seen: { read: unknown; rows: unknown } | null = null;
  /** Work waiting for the one in flight: decisions run one at a time, in order, off the pass. */
  private chain: Promise<void> = Promise.resolve();
  private readonly queues = new Map<string, DeliveryQueue>();
  private readonly origin: Origin;
  private closed = false;

  constructor(private readonly o: NotifierOptions) {
    this.origin = { fleet: withoutCredentials(o.repoUrl) };
  }

  /** Where the memory is kept (the registry; set once the daemon made it). */
  attach(store: StateStore): void {
    this.store = store;
  }

  onPass(p: PassObservation): void {
    if (!p.locked || !p.read || !p.rows || this.closed) return;
    this.config = p.fleet?.notify;
    if (!this.config?.webhooks?.length && !this.config?.githubStatus) return;
    if (this.seen?.read === p.read && this.seen.rows === p.rows) return;
    this.seen = { read: p.read, rows: p.rows };
    const { read, rows } = p;
    this.then(async (memory) => decidePass(memory, read, rows));
  }

  onBackup(project: string, ok: boolean, message?: string): void {
    if (this.closed) return;
    this.then(async (memory) => ({ statuses: [], ...decideBackup(memory, project, ok, message) }));
  }

  /** Wait for the decisions taken so far (tests, and stop). */
  settled(): Promise<void> {
    return this.chain;
  }

  close(): void {
    this.closed = true;
    for (const q of this.queues.values()) q.close();
  }

  private then(decide: (m: NotifyMemory) => Promise<{ notices: Notice[]; statuses: CommitStatus[]; memory: NotifyMemory }>): void {
    this.chain = this.chain.then(async () => {
      const d = await decide(await this.loaded());
      this.memory = d.memory;
      for (const n of d.notices) this.dispatch(n);
      for (const s of d.statuses) this.dispatchStatus(s);
      await this.save();
    }).catch((err: unknown) => this.o.log.warn({ err: { message: describe(err) } }, 'notifications: could not decide or record what to tell; retrying at the next change'));
  }

  private async loaded(): Promise<NotifyMemory> {
    if (this.memory) return this.memory;
    const kept = this.store ? await this.store.getState<Partial<NotifyMemory>>(MEMORY_STATE) : null;
    this.memory = { ...emptyMemory(), ...kept, projects: { ...kept?.projects }, backups: [...(kept?.backups ?? [])] };
    this.saved = JSON.stringify(this.memory);
    return this.memory;
  }

  /** Written only when it changed: most passes tell nothing. */
  private async save(): Promise<void> {
    const text = JSON.stringify(this.memory);
    if (!this.store || text === this.saved) return;
    await this.store.setState(MEMORY_STATE, this.memory);
    this.saved = text;
  }

  private queue(receiver: string): DeliveryQueue {
    let q = this.queues.get(receiver);
    if (!q) {
      q = new DeliveryQueue({
        receiver, log: this.o.log, max: this.o.maxQueue, baseMs: this.o.retry?.baseMs, capMs: this.o.retry?.capMs, attempts: this.o.attempts,
        onResult: (r) => this.o.metrics?.delivery(receiver, r),
      });
      const queue = q;
      this.o.metrics?.queue(receiver, () => queue.length);
      this.queues.set(receiver, q);
    }
    return q;
  }

  private dispatch(n: Notice): void {
    const what = `${n.event} ${'project' in n ? n.project : n.commit.slice(0, 7)}`;
    for (const w of this.config?.webhooks ?? []) {
      if (w.events && !w.events.includes(n.event)) continue;
      const body = w.format === 'slack' ? slackBody(n, this.origin) : jsonBody(n, this.origin, new Date());
      this.queue(w.name).push({ what, send: async () => this.withSecret(w.urlSecret, 'the webhook URL', (url) => postJson(url, body)) });
    }
  }

  private dispatchStatus(s: CommitStatus): void {
    const gh = this.config?.githubStatus;
    if (!gh) return;
    this.queue(GITHUB).push({
      what: `status ${s.state} ${s.sha.slice(0, 7)}`,
      send: async () => this.withSecret(gh.tokenSecret, 'a GitHub token', (token) => postCommitStatus(gh, token, s)),
    });
  }

  /** Read a credential at send time (a rotation shows at once); a missing one is retried, as the operator may add it. */
  private async withSecret(ref: string, what: string, use: (value: string) => Promise<Attempt>): Promise<Attempt> {
    let value: string;
    try {
      value = await this.o.secrets.get(ref);
    } catch (err) {
      const missing = isFleetError(err, 'SECRET_MISSING');
      return { ok: false, retry: true, reason: missing ? `the secret ${ref} is missing: store ${what} there` : `the secret store failed: ${describe(err)}` };
    }
    return use(value);
  }
}

function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}
