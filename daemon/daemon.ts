// The watcher daemon: follows the tracked branch and converges the fleet, one pass at a time.
// A poll, a webhook, a file save or an instance exit only says "look again now"; every pass re-reads everything.
import type { Logger } from 'pino';
import { join } from 'node:path';
import { privateDir } from './files.ts';
import { Backoff, type BackoffOptions } from './core/backoff.ts';
import { describe, FleetError, isFleetError } from './core/errors.ts';
import { probeReady, type Health } from './health.ts';
import { createCommitReader, type CommitReader, type FleetRead } from './git/read.ts';
import { readWorktree } from './git/worktree.ts';
import { loadRead, saveRead } from './git/read-cache.ts';
import type { GitSource } from './git/source.ts';
import { createPoller } from './git/watch.ts';
import { Registry } from './registry/registry.ts';
import { provisionProject } from './provision/project.ts';
import { createServerDirectory } from './postgres/servers.ts';
import { reconcile, reconcileState, survey, type ReconcileDeps, type ReconcileState } from './reconcile/reconcile.ts';
import type { FleetSecretStore } from './secrets/refs.ts';
import type { Driver, DriverLayout, FleetConfig } from './core/types.ts';
import { syncGateway, type GatewaySync } from './reconcile/gateway.ts';
import { BackupScheduler } from './reconcile/backups.ts';
import { HealthMonitor } from './reconcile/health.ts';
import type { ProjectRecord } from './registry/registry.ts';
import type { FleetObserver } from './notify/observer.ts';

export interface DaemonOptions {
  log: Logger;
  /** Where the daemon keeps schema files, logs, pid files and backups. */
  stateDir: string;
  registryUrl: string;
  /** Admin URL of the Postgres server that holds project databases. */
  adminUrl: string;
  instanceDbHost?: string;
  /** fleet.yaml at start, for its Postgres servers (postgres.servers); each valid fleet.yaml read later replaces them. */
  postgres?: Pick<FleetConfig, 'postgres'>;
  source: GitSource;
  /** Read the working tree instead of commits (`--watch-worktree`). */
  worktree?: boolean;
  driver: Driver;
  /** Where the driver's instances listen and read their schema (drivers/index.ts driverLayout). */
  layout: DriverLayout;
  secrets: FleetSecretStore;
  secretPrefix: string;
  /** fleet.yaml `sharedSecrets` at start; each valid fleet.yaml read later replaces it. */
  sharedSecrets?: readonly string[];
  repoUrl: string;
  /** Milliseconds between passes when nothing kicks one. */
  intervalMs: number;
  /** Milliseconds between fetches of a remote (the poll interval); a local source is read every pass. */
  fetchIntervalMs?: number;
  portBase?: number;
  /** Where guarded deletes put their pg_dump (default <stateDir>/backups). */
  backupDir?: string;
  readyWaitMs?: number;
  backoff?: BackoffOptions;
  gateway?: GatewaySync | null;
  probe?: (upstream: string) => Promise<Health>;
  /** How many projects one pass converges side by side. */
  concurrency?: number;
  /** Milliseconds between health probe rounds. */
  healthIntervalMs?: number;
  /** Milliseconds between full passes, which look at every project even when nothing it depends on changed. */
  resyncMs?: number;
  /** Metrics and notifications: told about passes, fetches, gateway loads and backups (notify/observer.ts). */
  observer?: FleetObserver;
}

/** Defaults an operator of a few hundred projects on one host can keep. */
const DEFAULT_CONCURRENCY = 8;
const DEFAULT_HEALTH_INTERVAL_MS = 10_000;
const DEFAULT_RESYNC_MS = 10 * 60_000;

/** Whether the tracked branch could be fetched; the fleet-wide `source` state in the registry. */
export interface SourceState {
  ok: boolean;
  reason?: 'SourceUnavailable';
  message?: string;
  /** The commit passes converge on while the source is unavailable. */
  commit?: string;
}

export interface PassResult {
  commit: string | null;
  ok: boolean;
  /** Projects the pass looked at (the others were settled and unchanged). */
  looked?: number;
  error?: string;
}

/** Projects looked at in one pass from which its garbage is collected right after it (see pass()). */
const COLLECT_AFTER = 100;

export class Daemon {
  readonly registry: Registry;
  readonly backups: BackupScheduler;
  // Made after the first sync: a remote source's clone (and so its .git) exists only then.
  private reader: CommitReader | null = null;
  private readonly poller;
  private readonly deps: ReconcileDeps;
  private migrated = false;
  private locked = false;
  private lastFetch = 0;
  private head: { commit: string; author: string } | null = null;
  private waitingLogged = false;
  /** The git source's last known state (null until the first sync this run). */
  private source: SourceState | null = null;
  /** The commit last written as `observed` (written once per commit, not every pass). */
  private recorded: string | null = null;
  private readonly state: ReconcileState = reconcileState();
  readonly health: HealthMonitor;
  /** When the last full pass ran (every project looked at). */
  private lastFull = 0;
  /** The commit last read, and what it read: a pass on the same commit does not read git again. */
  private lastRead: FleetRead | null = null;
  /** What the current pass read and left in the registry, once it got that far (for observers). */
  private reached: { read: FleetRead; rows: ProjectRecord[] } | null = null;
  /** What the gateway and the backup schedule were last synced from: rows unchanged → nothing to sync. */
  private synced: { rows: ProjectRecord[] | null; fleet: FleetConfig | null; gatewayOk: boolean } = { rows: null, fleet: null, gatewayOk: false };
  /** Where the last fleet read is kept across restarts. */
  private get readCachePath(): string {
    return join(this.opts.stateDir, 'last-read.json');
  }
  /** The last pass's outcome, for /healthz and tests. */
  last: PassResult = { commit: null, ok: false };
  passes = 0;
  /** Passes started, and the callers waiting for one that starts after their request (`POST /api/v1/sync?wait=1`). */
  private started = 0;
  private waiters: { after: number; resolve: (r: PassResult) => void }[] = [];
  /** A fetch was asked for (webhook, sync): the next pass fetches, even if one in flight fetched a moment before. */
  private fetchAsked = false;
  lastFleet: FleetConfig | null = null;

  constructor(private readonly opts: DaemonOptions) {
    const log = opts.log;
    privateDir(opts.stateDir);
    privateDir(join(opts.stateDir, 'projects'));
    const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
    this.registry = new Registry(opts.registryUrl, log.child({ component: 'registry' }), { connections: concurrency + 2 });
    const probe = opts.probe ?? ((u: string) => probeReady(u));
    this.health = new HealthMonitor({
      probe, intervalMs: opts.healthIntervalMs ?? DEFAULT_HEALTH_INTERVAL_MS, concurrency: 16, log,
      onChange: () => this.kick(),
    });
    const lastExit = new Map<string, number | null>();
    // A project's dumps come from the server its database lives on (the registry says which).
    const adminFor = (id: string) => this.adminUrlOf(id);
    this.backups = new BackupScheduler({ adminUrl: opts.adminUrl, adminFor, dir: opts.backupDir ?? join(opts.stateDir, 'backups'), registry: this.registry, registryUrl: opts.registryUrl, log, retry: opts.backoff && { baseMs: opts.backoff.baseMs, capMs: opts.backoff.capMs }, observer: opts.observer });
    this.deps = {
      registry: this.registry, driver: opts.driver, layout: opts.layout, log,
      secrets: opts.secrets, secretPrefix: opts.secretPrefix, sharedSecrets: opts.sharedSecrets ?? [], adminUrl: opts.adminUrl, instanceDbHost: opts.instanceDbHost,
      stateDir: opts.stateDir, repoUrl: opts.repoUrl, portBase: opts.portBase ?? 4100, backupDir: opts.backupDir ?? join(opts.stateDir, 'backups'),
      backoff: new Backoff(opts.backoff), retries: new Backoff(opts.backoff), probe, health: this.health, lastExit, concurrency,
      readyWaitMs: opts.readyWaitMs ?? 5000, now: () => Date.now(),
      provisionProject: (id, o) => provisionProject(this.deps, id, o),
      servers: createServerDirectory({ adminUrl: opts.adminUrl, secrets: opts.secrets, fleet: opts.postgres }),
    };
    opts.driver.onExit?.((id, code) => {
      lastExit.set(id, code);
      // `commit` is the one this daemon follows, as on every other line about a project.
      log.info({ project: id, commit: this.head?.commit ?? null, exitCode: code }, code === 0 ? 'instance exited with 0: starting it again' : 'instance exited');
      this.kick();
    });
    this.poller = createPoller(() => this.pass().then(() => undefined), {
      intervalMs: opts.intervalMs, jitter: 0.1,
      onError: (err: unknown) => log.error({ err: { message: describe(err) } }, 'pass failed'),
    });
  }

  /** The admin URL of the Postgres server a project's database lives on (the registry's `database_server`). */
  async adminUrlOf(id: string): Promise<string> {
    return (await this.deps.servers.get((await this.registry.get(id))?.databaseServer ?? 'main')).adminUrl;
  }

  start(): void {
    this.poller.start();
    this.health.start();
  }

  /** Look again now (webhook, file save, instance exit). A kick during a pass gives exactly one more pass. */
  kick(fetch = false): void {
    if (fetch) {
      this.lastFetch = 0;
      this.fetchAsked = true;
    }
    this.poller.kick();
  }

  /**
   * Fetch now, and resolve with the outcome of the first pass that starts after this call: it converges on the
   * branch's HEAD as of this request (or a later one). Never rejects: a daemon that stops first says so.
   */
  syncNow(): Promise<PassResult> {
    const after = this.started;
    const done = new Promise<PassResult>((resolve) => this.waiters.push({ after, resolve }));
    this.kick(true);
    return done;
  }

  /** Hand a finished pass's outcome to everyone who waits for a pass started after their request. */
  private settle(seq: number, result: PassResult): void {
    const ready = this.waiters.filter((w) => seq > w.after);
    this.waiters = this.waiters.filter((w) => seq <= w.after);
    for (const w of ready) w.resolve(result);
  }

  async stop(): Promise<void> {
    await this.poller.stop();
    for (const w of this.waiters.splice(0)) w.resolve({ commit: this.head?.commit ?? null, ok: false, error: 'the daemon stopped before the pass ran' });
    await this.health.stop();
    const snap = this.reader?.snapshot();
    if (snap) saveRead(this.readCachePath, snap);
    this.backups.stop();
    await this.opts.driver.close?.();
    await this.opts.source.close();
    await this.registry.close();
  }

  /** One pass (`full`: look at every project, as the periodic resync does). Never throws: the outcome is logged, recorded and returned. */
  async pass(opts: { full?: boolean } = {}): Promise<PassResult> {
    const seq = ++this.started;
    const t0 = performance.now();
    this.reached = null;
    const result = await this.runPass(opts);
    // A pass that looked at many projects (a start, a full resync) leaves tens of MiB behind, which V8 hands back
    // only ~10 s later: an idle daemon's RSS stood 25 MiB higher meanwhile. With --expose-gc (DAEMON_NODE_FLAGS)
    // it is collected at once; without it, nothing changes.
    if ((result.looked ?? 0) >= COLLECT_AFTER) (globalThis as { gc?: () => void }).gc?.();
    // Observers see the read and rows of a pass that got to the end: a pass that failed halfway has neither (its
    // rows would be the last pass's, told as this commit's outcome).
    const { read = null, rows = null } = this.reached ?? {};
    this.opts.observer?.onPass?.({ result, seconds: (performance.now() - t0) / 1000, locked: this.locked, read, rows, fleet: this.lastFleet });
    this.settle(seq, result);
    return result;
  }

  private async runPass(opts: { full?: boolean }): Promise<PassResult> {
    const log = this.opts.log;
    this.passes += 1;
    try {
      // 1. The registry must be reachable and ours alone (advisory lock); otherwise wait for the next pass.
      // 2. Follow the branch (fetch at most every poll interval, or when kicked by a webhook) and read the commit.
      //    Git is read beside the lock check and the pass's surroundings (the registry's rows, the instances, the
      //    restore requests), so a webhook's pass waits for the slower of them, not for their sum; nothing is
      //    written before the lock is known to be held.
      const around = this.ready().then((ok) => (ok ? survey(this.deps) : null));
      const [surroundings, fetched] = await Promise.all([around, this.fetch().catch((err: unknown) => ({ err }))]);
      if (!surroundings) return (this.last = { commit: this.head?.commit ?? null, ok: false, error: 'waiting for the reconcile lock' });
      const desired = await this.observe(fetched);
      // 3. Converge the projects whose inputs changed (all of them on a full pass), then the gateway.
      // A new fleet.yaml may change what every project resolves to (shared secrets): everyone is looked at.
      const fleetChanged = !!desired.fleet && desired.fleet !== this.synced.fleet;
      const full = opts.full || fleetChanged || Date.now() - this.lastFull >= (this.opts.resyncMs ?? DEFAULT_RESYNC_MS);
      if (full) this.lastFull = Date.now();
      const { failed, looked } = await reconcile(this.deps, { desired, author: this.head?.author ?? 'fleet-daemon' }, this.state, { full, surroundings });
      // The converged registry, as the pass read and wrote it (a write by anyone else shows at the next pass's
      // list), serves the backup schedule, the health probes and the gateway.
      const rows = await this.registry.listKnown();
      const fleet = desired.fleet ?? this.lastFleet;
      const changed = full || rows !== this.synced.rows || fleet !== this.synced.fleet;
      // Nothing new for the gateway: one small request says whether Caddy still runs what was loaded.
      const gw = this.opts.gateway;
      const unchanged = gw && !changed && this.synced.gatewayOk && await gw.caddy.stillApplied().catch(() => false);
      const gateway = gw && !unchanged ? await syncGateway(gw, this.registry, rows, fleet, log, { verify: full }) : null;
      // The schedule and the probes follow after the gateway: serving the change comes first.
      if (changed) {
        this.backups.sync(rows, fleet?.backups?.registry);
        this.health.setTargets(probeTargets(rows));
      }
      if (gateway) this.opts.observer?.onGatewayLoad?.(gateway);
      this.synced = { rows: gateway ? await this.registry.listKnown() : rows, fleet, gatewayOk: gateway ? gateway.ok : this.synced.gatewayOk };
      this.reached = { read: desired, rows: this.synced.rows! };
      // 4. The gateway routes to the new instances now (or there is none): retire the ones they replaced. A failed
      //    load leaves Caddy on the old upstreams, so they stay until a pass loads the new ones.
      if (this.opts.driver.retire && (!gateway || gateway.ok)) {
        const routed = new Set(rows.flatMap((r) => (r.upstream ? [r.upstream] : [])));
        await this.opts.driver.retire(routed).catch((err: unknown) => log.warn({ err: { message: describe(err) } }, 'retiring replaced instances failed; retrying next pass'));
      }
      if (this.recorded !== desired.commit) {
        await this.registry.setState('observed', { commit: desired.commit, at: new Date().toISOString() });
        this.recorded = desired.commit;
      }
      this.last = { commit: desired.commit, ok: failed.length === 0, looked, ...(failed.length ? { error: `not converged: ${failed.join(', ')}` } : {}) };
      return this.last;
    } catch (err) {
      const message = describe(err);
      if (isFleetError(err, 'POSTGRES_UNREACHABLE')) {
        // Instances keep running and Caddy keeps its config; only the registry is out of reach.
        this.locked = false;
        log.warn({ err: { code: 'POSTGRES_UNREACHABLE', message } }, 'registry unreachable: keeping everything as it runs, retrying');
      } else {
        log.error({ err: { code: (err as FleetError).code, message } }, 'pass failed');
      }
      this.last = { commit: this.head?.commit ?? null, ok: false, error: message };
      return this.last;
    }
  }

  private async ready(): Promise<boolean> {
    if (!this.migrated) {
      await this.registry.migrate();
      this.migrated = true;
    }
    const had = this.locked;
    this.locked = await this.registry.tryLock();
    if (!this.locked) {
      // Backups belong to the daemon that holds the lock.
      this.backups.stop();
      if (!this.waitingLogged) this.opts.log.warn('another daemon holds the reconcile lock on this registry; waiting for it to stop');
      this.waitingLogged = true;
      return false;
    }
    if (!had) this.opts.log.info('holding the reconcile lock: this daemon reconciles the fleet');
    this.waitingLogged = false;
    return true;
  }

  /** The fleet's SourceUnavailable condition: written and logged when it changes, not every pass. */
  private async sourceState(next: SourceState): Promise<void> {
    const prev = this.source;
    if (prev && prev.ok === next.ok && prev.message === next.message) return;
    const at = new Date().toISOString();
    await this.registry.setState('source', { ...next, at });
    this.source = next;
    if (!next.ok) this.opts.log.warn({ commit: next.commit, reason: next.reason }, `git source unavailable, converging on the last fetched commit: ${next.message}`);
    else if (prev && !prev.ok) this.opts.log.info({ commit: this.head?.commit }, 'git source available again');
  }

  /** The source's sync, timed for the observer (metrics). */
  private async timedSync(): ReturnType<GitSource['sync']> {
    const t0 = performance.now();
    const seconds = () => (performance.now() - t0) / 1000;
    try {
      const r = await this.opts.source.sync();
      this.opts.observer?.onFetch?.(seconds(), true);
      return r;
    } catch (err) {
      this.opts.observer?.onFetch?.(seconds(), false);
      throw err;
    }
  }

  /**
   * Fetch (when due) and read the commit the branch points at, writing nothing to the registry: it runs before
   * the lock is known to be held. A fetch that fails falls back to the last fetched commit (see observe).
   */
  private async fetch(): Promise<Fetched> {
    const fetchDue = this.fetchAsked || Date.now() - this.lastFetch >= (this.opts.fetchIntervalMs ?? 0);
    let source: SourceState | null = null;
    if (fetchDue || !this.head) {
      this.fetchAsked = false;
      try {
        const r = await this.timedSync();
        if (r.changed) this.opts.log.info({ commit: r.head, author: r.author }, 'tracked branch moved');
        this.head = { commit: r.head, author: r.author };
        source = { ok: true };
      } catch (err) {
        // Git out of reach is not an outage: converge on the last fetched commit until the source is back.
        const last = this.head ?? (await this.opts.source.lastKnown().then((r) => r && { commit: r.head, author: r.author }));
        if (!last) throw err;
        this.head = last;
        source = { ok: false, reason: 'SourceUnavailable', message: describe(err), commit: last.commit };
      } finally {
        this.lastFetch = Date.now();
      }
    }
    const same = !this.opts.worktree && this.lastRead?.commit === this.head.commit;
    const read = same ? this.lastRead! : this.opts.worktree ? await readWorktree(this.opts.source.dir) : await (this.reader ??= createCommitReader(this.opts.source.dir, { primed: loadRead(this.readCachePath) })).read(this.head.commit);
    return { read, source };
  }

  /** What `fetch` found, now that the lock is held: the source's state recorded, the read made current. */
  private async observe(fetched: Fetched | { err: unknown }): Promise<FleetRead> {
    if ('err' in fetched) throw fetched.err;
    const { read, source } = fetched;
    if (source) await this.sourceState(source);
    this.lastRead = read;
    if (read.fleet) {
      this.lastFleet = read.fleet;
      this.deps.sharedSecrets = read.fleet.sharedSecrets ?? [];
      this.deps.servers.configure(read.fleet);
    }
    else if (read.fleetIssues.length && this.recorded !== read.commit) this.opts.log.warn({ issues: read.fleetIssues }, 'fleet.yaml is invalid at this commit; keeping the last valid one');
    return read;
  }
}

interface Fetched {
  read: FleetRead;
  /** The source's state when this pass fetched (null: no fetch was due). */
  source: SourceState | null;
}

/** The instances the health monitor probes: those the registry routes to. */
function probeTargets(rows: ProjectRecord[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of rows) if (r.upstream && r.present && r.desiredState === 'running' && r.status !== 'deleted') out.set(r.id, r.upstream);
  return out;
}
