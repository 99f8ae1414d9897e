// Guarded delete: only a manifest with `state: deleted` and `deletion.confirm` naming the id gets here (validation
// enforces it). The instance stops; the database is dropped only with `dropDatabase: true`, and only after a fresh
// backup succeeded. A failed backup keeps the database and says so.
import type { DesiredProject } from '../types.ts';
import type { ProjectRecord } from '../registry/registry.ts';
import { backupDatabase, databaseNames, dropDatabase } from './database.ts';
import { downConditions, stopInstance } from '../instance.ts';
import type { ReconcileContext } from '../reconcile.ts';

export async function deleteProject(ctx: ReconcileContext, rec: ProjectRecord, d: DesiredProject): Promise<void> {
  const { deps } = ctx;
  if (rec.status === 'deleted') return;
  // A failed attempt (backup refused, Postgres down) is retried with backoff, not on every pass; a new commit
  // tries again at once. The failure stays recorded on the project meanwhile.
  const retryKey = `delete:${rec.id}:${ctx.commit}`;
  if (!deps.retries.decide(retryKey, undefined, deps.now()).start) return;
  try {
    await attemptDelete(ctx, rec, d);
    deps.retries.forget(retryKey);
  } catch (err) {
    deps.retries.failedStart(retryKey, deps.now());
    throw err;
  }
}

async function attemptDelete(ctx: ReconcileContext, rec: ProjectRecord, d: DesiredProject): Promise<void> {
  const { deps } = ctx;
  await deps.registry.update(rec.id, { observedCommit: ctx.commit });
  // 1. Stop the instance first: nothing may write while the backup runs.
  await stopInstance(ctx, rec, 'stopped');
  const detail: Record<string, unknown> = { reason: `state: deleted confirmed for ${rec.id}` };
  if (d.manifest.deletion?.confirm === rec.id && d.manifest.deletion.dropDatabase) {
    // 2. A fresh backup, then the database, its role and the project's secrets.
    const db = databaseNames(rec.id);
    detail.backup = await backupDatabase(deps.adminUrl, db, deps.backupDir);
    await dropDatabase(deps.adminUrl, db);
    for (const ref of Object.values(rec.secretRefs)) {
      if (ref.startsWith(`${deps.secretPrefix}/${rec.id}/`)) await deps.secrets.delete(ref);
    }
    deps.provisioned.delete(rec.id);
    detail.dropped = db.database;
  } else {
    detail.databaseKept = rec.databaseName;
  }
  // 3. The row stays (events reference it) with status deleted; the gateway no longer routes it. Its conditions
  //    say what happened to the database (read afresh: the stop above wrote them).
  const message = detail.dropped
    ? `state: deleted; instance stopped, database ${rec.databaseName} dropped after a backup (${String(detail.backup)})`
    : `state: deleted; instance stopped, database ${rec.databaseName} kept (dropDatabase is not set)`;
  const conditions = downConditions((await deps.registry.get(rec.id))?.conditions ?? rec.conditions, 'deleted', message);
  await deps.registry.updateWithEvents(rec.id, { status: 'deleted', desiredState: 'stopped', upstream: null, lastHealth: null, conditions, manifest: d.manifest, observedCommit: ctx.commit, appliedCommit: ctx.commit },
    [{ action: 'delete', actor: ctx.actor, commit: ctx.commit, detail }]);
}
