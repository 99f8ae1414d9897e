// The database part of the executor's `restore` action: the request marked started, the project role's password
// read from its own secret, the restore with its progress written to the request row, and the outcome. The
// executor (reconcile.ts) stops the instance before and starts it after.
import type { Logger } from 'pino';
import { describe } from '../core/errors.ts';
import type { Action, SecretStore } from '../core/types.ts';
import type { NewEvent, ProjectRecord, Registry } from '../registry/registry.ts';
import type { Progress } from './archive.ts';
import type { RestoreOutcome } from './requests.ts';
import { restoreDatabase } from './restore.ts';

export interface RestoreDeps {
  registry: Registry;
  secrets: SecretStore;
  adminUrl: string;
  backupDir: string;
}

type RestoreAction = Extract<Action, { kind: 'restore' }>;

/** Restore the database; never throws: a failure is an outcome (the old database still serves). */
export async function runRestore(deps: RestoreDeps, rec: ProjectRecord, a: RestoreAction, log: Logger): Promise<RestoreOutcome> {
  let last = 0;
  const onProgress = (p: Progress) => {
    // The CLI polls the row: at most one write a second.
    if (Date.now() - last < 1000) return;
    last = Date.now();
    void deps.registry.markRequest(a.request, { progress: { ...p, at: new Date().toISOString() } }).catch(() => {});
  };
  try {
    const url = await deps.secrets.get(rec.databaseUrlRef);
    const rolePassword = decodeURIComponent(new URL(url).password);
    const r = await restoreDatabase({ adminUrl: deps.adminUrl, backupDir: deps.backupDir, project: rec.id, file: a.file, rolePassword, commit: rec.appliedCommit, onProgress });
    log.info({ backup: r.backup, preRestore: r.preRestore, entries: r.entries }, 'database restored');
    const kept = r.previousKept ? `; the replaced database is still there as ${r.previousKept} (dropped at the next restore)` : '';
    return {
      ok: true, backup: r.backup, preRestore: r.preRestore, entries: r.entries,
      message: `restored ${rec.databaseName} from ${r.backup}; what it replaced is saved as ${r.preRestore}${kept}`,
    };
  } catch (err) {
    log.warn({ backup: a.backup, err: { message: describe(err) } }, 'restore failed; the database was not changed');
    return { ok: false, backup: a.backup, message: describe(err) };
  }
}

/** Close the request with its outcome and record its event (`restore` or `restore_failed`), in one transaction. */
export async function closeRestore(registry: Registry, a: RestoreAction, outcome: RestoreOutcome, actor: string): Promise<void> {
  const event: NewEvent = { action: outcome.ok ? 'restore' : 'restore_failed', actor, detail: { reason: a.reason, request: a.request, ...outcome } };
  await registry.markRequest(a.request, { outcome, event: { ...event, projectId: a.id } });
}
