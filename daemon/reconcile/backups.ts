// Scheduled backups: each project's database on its manifest's cron schedule (`backup: { schedule, retention }`),
// and the registry's on fleet.yaml's (`backups: { registry: { schedule, retention } }`). Retention prunes scheduled
// dumps only: manual, pre-delete and pre-restore dumps stay until an operator removes them. Level-based like the
// rest: each pass hands over the registry rows and fleet.yaml, and the scheduled tasks are made to match them.
import cron, { type ScheduledTask } from 'node-cron';
import { rmSync } from 'node:fs';
import type { Logger } from 'pino';
import { describe } from '../core/errors.ts';
import { REGISTRY_FOLDER, listBackups } from '../backup/layout.ts';
import { backupRegistry, takeBackup } from '../backup/take.ts';
import { lastManifest, type ProjectRecord, type Registry } from '../registry/registry.ts';
import type { FleetObserver } from '../notify/observer.ts';

/** A schedule: cron expression and how many scheduled dumps to keep. */
export interface BackupSchedule {
  schedule: string;
  retention: number;
}

interface Scheduled {
  key: string;
  task: ScheduledTask;
}

/** Pacing of the retries of a failed backup: doubling from baseMs up to capMs, until one succeeds. */
export interface BackupRetry {
  baseMs: number;
  capMs: number;
}

export class BackupScheduler {
  private readonly tasks = new Map<string, Scheduled>();
  /** Pending retries of failed backups, with the number of failures so far. */
  private readonly retries = new Map<string, { failures: number; timer: NodeJS.Timeout }>();
  private readonly retry: BackupRetry;

  constructor(private readonly o: { adminUrl: string; /** The admin URL of the server holding a project's database (default adminUrl). */ adminFor?: (id: string) => Promise<string>; dir: string; registry: Registry; log: Logger; retry?: BackupRetry; registryUrl?: string; observer?: Pick<FleetObserver, 'onBackup'> }) {
    this.retry = o.retry ?? { baseMs: 30_000, capMs: 30 * 60_000 };
  }

  /** Schedule every project with a database and a `backup` block, and the registry when fleet.yaml says; unschedule the others. */
  sync(records: ProjectRecord[], registrySchedule?: BackupSchedule | null): void {
    const wanted = new Map<string, BackupSchedule>();
    for (const r of records) {
      const backup = lastManifest(r)?.backup;
      if (backup && r.status !== 'deleted' && cron.validate(backup.schedule)) wanted.set(r.id, backup);
    }
    if (registrySchedule && this.o.registryUrl && cron.validate(registrySchedule.schedule)) wanted.set(REGISTRY_FOLDER, registrySchedule);
    for (const [id, s] of this.tasks) {
      const w = wanted.get(id);
      if (!w || `${w.schedule}|${w.retention}` !== s.key) {
        void s.task.destroy();
        this.tasks.delete(id);
        this.cancelRetry(id);
      }
    }
    for (const [id, w] of wanted) {
      if (this.tasks.has(id)) continue;
      const task = cron.schedule(w.schedule, () => this.run(id, w.retention), { noOverlap: true, name: `backup-${id}` });
      task.unref();
      this.tasks.set(id, { key: `${w.schedule}|${w.retention}`, task });
    }
  }

  /** One scheduled backup now (a project id, or `_registry`), then prune to `retention` scheduled dumps. Failures are events, never a crash. */
  async run(id: string, retention: number): Promise<string | null> {
    const failures = this.cancelRetry(id);
    const isRegistry = id === REGISTRY_FOLDER;
    try {
      const info = isRegistry
        ? await backupRegistry({ registryUrl: this.o.registryUrl!, backupDir: this.o.dir, kind: 'scheduled' })
        : await takeBackup({ adminUrl: this.o.adminFor ? await this.o.adminFor(id) : this.o.adminUrl, backupDir: this.o.dir, project: id, kind: 'scheduled', commit: (await this.o.registry.get(id))?.appliedCommit });
      const pruned = prune(this.o.dir, id, retention);
      const detail = { name: info.name, file: info.file, kind: info.kind, size: info.size, pruned };
      // The registry has no project row to hang an event on: its last backup is fleet state.
      if (isRegistry) await this.o.registry.setState('registry_backup', { ok: true, at: info.at, ...detail });
      else await this.o.registry.event(id, 'backup', { actor: 'fleet-daemon', commit: info.commit, detail });
      this.o.log.info({ project: isRegistry ? undefined : id, file: info.file }, isRegistry ? 'registry backup written' : 'backup written');
      this.o.observer?.onBackup?.(id, true);
      return info.file;
    } catch (err) {
      // Retried with backoff, not left to the next cron tick (a daily backup would be a day late).
      const waitMs = Math.min(this.retry.baseMs * 2 ** failures, this.retry.capMs);
      this.o.log.warn({ project: isRegistry ? undefined : id, err: { message: describe(err) }, retryInMs: waitMs }, isRegistry ? 'scheduled registry backup failed' : 'scheduled backup failed');
      const failed = { message: describe(err), retryInMs: waitMs };
      this.o.observer?.onBackup?.(id, false, failed.message);
      await (isRegistry
        ? this.o.registry.setState('registry_backup_failed', { ...failed, at: new Date().toISOString() })
        : this.o.registry.event(id, 'backup_failed', { actor: 'fleet-daemon', detail: failed })).catch(() => {});
      const timer = setTimeout(() => void this.run(id, retention), waitMs);
      timer.unref();
      this.retries.set(id, { failures: failures + 1, timer });
      return null;
    }
  }

  /** Drop a pending retry; returns how many failures in a row it stood for. */
  private cancelRetry(id: string): number {
    const r = this.retries.get(id);
    if (!r) return 0;
    clearTimeout(r.timer);
    this.retries.delete(id);
    return r.failures;
  }

  scheduled(): string[] {
    return [...this.tasks.keys()].sort();
  }

  stop(): void {
    for (const s of this.tasks.values()) void s.task.destroy();
    this.tasks.clear();
    for (const id of [...this.retries.keys()]) this.cancelRetry(id);
  }
}

/** Keep the newest `retention` scheduled dumps; other kinds are never pruned. */
function prune(backupDir: string, id: string, retention: number): number {
  const old = listBackups(backupDir, id).filter((b) => b.kind === 'scheduled').slice(retention);
  for (const b of old) rmSync(b.file, { force: true });
  return old.length;
}
