// Scheduled per-project backups (manifest `backup: { schedule, retention }`): pg_dump of the project's own
// database on its cron schedule, keeping the newest `retention` files. Level-based like the rest: each pass hands
// over the registry and the scheduled tasks are made to match it.
import cron, { type ScheduledTask } from 'node-cron';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { describe } from '../core/errors.ts';
import { backupDatabase, databaseNames } from '../provision/database.ts';
import { lastManifest, type ProjectRecord, type Registry } from '../registry/registry.ts';

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

  constructor(private readonly o: { adminUrl: string; dir: string; registry: Registry; log: Logger; retry?: BackupRetry }) {
    this.retry = o.retry ?? { baseMs: 30_000, capMs: 30 * 60_000 };
  }

  /** Schedule every project with a database and a `backup` block; unschedule the others. */
  sync(records: ProjectRecord[]): void {
    const wanted = new Map<string, { schedule: string; retention: number }>();
    for (const r of records) {
      const backup = lastManifest(r)?.backup;
      if (backup && r.status !== 'deleted' && cron.validate(backup.schedule)) wanted.set(r.id, backup);
    }
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

  /** One backup now, then prune to `retention` files. Failures are events, never a crash. */
  async run(id: string, retention: number): Promise<string | null> {
    const dir = join(this.o.dir, id);
    const failures = this.cancelRetry(id);
    try {
      const file = await backupDatabase(this.o.adminUrl, databaseNames(id), dir);
      const pruned = prune(dir, retention);
      await this.o.registry.event(id, 'backup', { actor: 'fleet-daemon', detail: { file, pruned } });
      this.o.log.info({ project: id, file }, 'backup written');
      return file;
    } catch (err) {
      // Retried with backoff, not left to the next cron tick (a daily backup would be a day late).
      const waitMs = Math.min(this.retry.baseMs * 2 ** failures, this.retry.capMs);
      this.o.log.warn({ project: id, err: { message: describe(err) }, retryInMs: waitMs }, 'scheduled backup failed');
      await this.o.registry.event(id, 'backup_failed', { actor: 'fleet-daemon', detail: { message: describe(err), retryInMs: waitMs } }).catch(() => {});
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

/** Keep the newest `retention` dumps (file names sort by their timestamp). */
function prune(dir: string, retention: number): number {
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const old = files.slice(0, Math.max(0, files.length - retention));
  for (const f of old) rmSync(join(dir, f), { force: true });
  return old.length;
}
