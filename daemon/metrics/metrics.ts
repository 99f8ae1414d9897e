// Prometheus metrics of one daemon (prom-client), on its own Registry: two daemons in one process (tests) never
// share a series. Counters and histograms move where something happens (a pass, a fetch, a gateway load, a backup);
// the per-project gauges are rendered at scrape time from the rows the last pass left, so a pass pays nothing for
// them however large the fleet is (a scrape of 1,000 projects walks 1,000 rows once).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ProjectStatus } from '../core/types.ts';
import type { FleetObserver, PassObservation } from '../notify/observer.ts';
import type { ProjectRecord } from '../registry/registry.ts';

const STATES: ProjectStatus[] = ['provisioning', 'running', 'stopped', 'failed', 'deleted'];
/** Where last successful backup times are kept across daemon restarts (registry fleet_state). */
const BACKUPS_STATE = 'metrics_backups';

/** The part of the registry metrics persist through: fleet_state get/set. */
export interface StateStore {
  getState<T>(key: string): Promise<T | null>;
  setState(key: string, value: unknown): Promise<void>;
}

export class FleetMetrics implements FleetObserver {
  readonly registry = new Registry();
  /** The rows the last pass left: read at scrape time, never copied. */
  private rows: readonly ProjectRecord[] = [];
  /** Last successful backup per project, epoch seconds. */
  private readonly backupAt = new Map<string, number>();
  private store: StateStore | null = null;
  private restored = false;
  private readonly passSeconds: Histogram<'result'>;
  private readonly passes: Counter<'result'>;
  private readonly lastOk: Gauge;
  private readonly fetchSeconds: Histogram;
  private readonly fetchFailures: Counter;
  private readonly gatewayLoads: Counter<'result'>;
  private readonly backups: Counter<'result'>;
  private readonly notifications: Counter<'receiver' | 'result'>;
  private readonly queues = new Map<string, () => number>();

  constructor() {
    const registers = [this.registry];
    const self = this;
    this.passSeconds = new Histogram({
      name: 'fleet_reconcile_duration_seconds', help: 'Duration of reconcile passes, by result (ok, failed, waiting: another daemon holds the lock).',
      labelNames: ['result'], buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300], registers,
    });
    this.passes = new Counter({ name: 'fleet_reconcile_passes_total', help: 'Reconcile passes, by result (ok, failed, waiting).', labelNames: ['result'], registers });
    this.lastOk = new Gauge({ name: 'fleet_reconcile_last_success_timestamp_seconds', help: 'When the last pass that converged every project it looked at ended (Unix time).', registers });
    this.fetchSeconds = new Histogram({
      name: 'fleet_git_fetch_duration_seconds', help: 'Duration of git source syncs (fetch of the remote, or read of the local branch), failed ones included.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers,
    });
    this.fetchFailures = new Counter({ name: 'fleet_git_fetch_failures_total', help: 'Git source syncs that failed (remote unreachable, token refused).', registers });
    this.gatewayLoads = new Counter({ name: 'fleet_gateway_config_loads_total', help: 'Caddy config loads, by result (ok, failed); an unchanged config is not loaded.', labelNames: ['result'], registers });
    this.backups = new Counter({ name: 'fleet_backups_total', help: 'Backups taken by this daemon, by result (ok, failed).', labelNames: ['result'], registers });
    this.notifications = new Counter({ name: 'fleet_notifications_total', help: 'Notification deliveries, by receiver and result (sent, retried, dropped).', labelNames: ['receiver', 'result'], registers });
    for (const c of [this.passes, this.gatewayLoads, this.backups]) for (const result of ['ok', 'failed']) c.inc({ result }, 0);
    new Gauge({
      name: 'fleet_notification_queue_length', help: 'Notifications waiting for delivery (or a retry), by receiver.', labelNames: ['receiver'], registers,
      collect() {
        this.reset();
        for (const [receiver, length] of self.queues) this.set({ receiver }, length());
      },
    });
    new Gauge({
      name: 'fleet_project_state', help: 'The project\'s status in the registry: 1 for the current state, 0 for the others.', labelNames: ['project', 'state'], registers,
      collect() {
        this.reset();
        for (const r of self.rows) for (const state of STATES) this.set({ project: r.id, state }, r.status === state ? 1 : 0);
      },
    });
    new Gauge({
      name: 'fleet_project_condition', help: 'The project\'s conditions (Ready, Healthy, Stalled, Reconciling, Invalid, Gateway, Degraded): 1 true, 0 false; absent when not set.',
      labelNames: ['project', 'type'], registers,
      collect() {
        this.reset();
        for (const r of self.rows) for (const c of r.conditions) this.set({ project: r.id, type: c.type }, c.status ? 1 : 0);
      },
    });
    new Gauge({
      name: 'fleet_project_info', help: 'Always 1: the project\'s hostname and applied commit as labels.', labelNames: ['project', 'hostname', 'commit'], registers,
      collect() {
        this.reset();
        for (const r of self.rows) this.set({ project: r.id, hostname: r.hostname ?? '', commit: r.appliedCommit ?? '' }, 1);
      },
    });
    new Counter({
      name: 'fleet_instance_restarts_total', help: 'Crash restarts of the project\'s instance (registry restarts column).', labelNames: ['project'], registers,
      collect() {
        this.reset();
        for (const r of self.rows) this.inc({ project: r.id }, r.restarts);
      },
    });
    new Counter({
      name: 'fleet_secret_rotations_total', help: 'Secret rotations of the project (fleet secrets rotate; registry secrets_version).', labelNames: ['project'], registers,
      collect() {
        this.reset();
        for (const r of self.rows) this.inc({ project: r.id }, r.secretsVersion);
      },
    });
    new Gauge({
      name: 'fleet_backup_last_success_timestamp_seconds', help: 'When the project\'s last successful backup was written (Unix time).', labelNames: ['project'], registers,
      collect() {
        this.reset();
        for (const [project, at] of self.backupAt) this.set({ project }, at);
      },
    });
    // The process's own figures, under their standard names, read at scrape time only: prom-client's default
    // collectors also sample the event loop 100 times a second, which an idle daemon should not pay for.
    new Gauge({ name: 'process_resident_memory_bytes', help: 'Resident memory size in bytes.', registers, collect() { this.set(process.memoryUsage.rss()); } });
    new Gauge({ name: 'process_start_time_seconds', help: 'Start time of the process since unix epoch in seconds.', registers, collect() { this.set(Math.round(Date.now() / 1000 - process.uptime())); } });
    new Counter({
      name: 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.', registers,
      collect() {
        const u = process.cpuUsage();
        this.reset();
        this.inc((u.user + u.system) / 1e6);
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text (Prometheus text format). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** Keep backup times in the registry; the ones a previous daemon kept are read after the first pass (migrated). */
  attach(store: StateStore): void {
    this.store = store;
  }

  private async restore(store: StateStore): Promise<void> {
    const kept = await store.getState<Record<string, number>>(BACKUPS_STATE).catch(() => null);
    for (const [id, at] of Object.entries(kept ?? {})) if (!this.backupAt.has(id) && typeof at === 'number') this.backupAt.set(id, at);
  }

  /** A notification queue to report the length of. */
  queue(receiver: string, length: () => number): void {
    this.queues.set(receiver, length);
  }

  delivery(receiver: string, result: 'sent' | 'retried' | 'dropped'): void {
    this.notifications.inc({ receiver, result });
  }

  onPass(p: PassObservation): void {
    const result = !p.locked ? 'waiting' : p.result.ok ? 'ok' : 'failed';
    this.passSeconds.observe({ result }, p.seconds);
    this.passes.inc({ result });
    if (result === 'ok') this.lastOk.set(Date.now() / 1000);
    if (p.rows) this.rows = p.rows;
    if (p.locked && this.store && !this.restored) {
      this.restored = true;
      void this.restore(this.store);
    }
  }

  onFetch(seconds: number, ok: boolean): void {
    this.fetchSeconds.observe(seconds);
    if (!ok) this.fetchFailures.inc();
  }

  onGatewayLoad(g: { ok: boolean; changed?: boolean }): void {
    if (!g.ok) this.gatewayLoads.inc({ result: 'failed' });
    else if (g.changed) this.gatewayLoads.inc({ result: 'ok' });
  }

  onBackup(project: string, ok: boolean): void {
    this.backups.inc({ result: ok ? 'ok' : 'failed' });
    if (!ok) return;
    this.backupAt.set(project, Math.floor(Date.now() / 1000));
    // Backups are rare (a schedule per project): one small write each keeps the time across restarts.
    void this.store?.setState(BACKUPS_STATE, Object.fromEntries(this.backupAt)).catch(() => {});
  }
}
