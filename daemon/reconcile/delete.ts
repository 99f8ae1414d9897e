// Guarded delete: only a manifest with `state: deleted` and `deletion.confirm` naming the id gets here (validation
// enforces it). The instance stops; the database is dropped only with `dropDatabase: true`, and only after a fresh
// backup succeeded. A failed backup keeps the database and says so. Returns what changed; the reconciler commits it.
import { join } from 'node:path';
import type { DesiredProject } from '../core/types.ts';
import type { ProjectRecord } from '../registry/registry.ts';
import { backupDatabase, databaseNames, dropDatabase } from '../provision/database.ts';
import { downConditions, type Step } from './instance.ts';
import type { ReconcileContext } from './context.ts';

/** The backoff key of a failed delete: retried with backoff at the same commit, at once at a new one. */
export const deleteKey = (id: string, commit: string) => `delete:${id}:${commit}`;

export async function deleteProject(ctx: ReconcileContext, rec: ProjectRecord, d: DesiredProject): Promise<Step> {
  const { deps } = ctx;
  const retryKey = deleteKey(rec.id, ctx.commit);
  try {
    const step = await attemptDelete(ctx, rec, d);
    deps.retries.forget(retryKey);
    return step;
  } catch (err) {
    deps.retries.failedStart(retryKey, deps.now());
    throw err;
  }
}

async function attemptDelete(ctx: ReconcileContext, rec: ProjectRecord, d: DesiredProject): Promise<Step> {
  const { deps } = ctx;
  // 1. The instance was stopped first (the reconciler's stop step): nothing may write while the backup runs.
  const detail: Record<string, unknown> = { reason: `state: deleted confirmed for ${rec.id}` };
  if (d.manifest.deletion?.confirm === rec.id && d.manifest.deletion.dropDatabase) {
    // 2. A fresh backup, then the database, its role and the project's secrets; on the server the database lives
    //    on, and then the copy an earlier move left on another one (after its own backup).
    const db = databaseNames(rec.id);
    const adminUrl = (await deps.servers.get(rec.databaseServer ?? 'main')).adminUrl;
    detail.backup = await backupDatabase(adminUrl, db, join(deps.backupDir, rec.id), { kind: 'pre-delete', commit: rec.appliedCommit });
    await dropDatabase(adminUrl, db);
    if (rec.oldDatabaseServer) {
      const old = (await deps.servers.get(rec.oldDatabaseServer)).adminUrl;
      detail.oldCopyBackup = await backupDatabase(old, db, join(deps.backupDir, rec.id), { kind: 'pre-delete', commit: rec.appliedCommit });
      await dropDatabase(old, db);
      detail.oldCopyDropped = `${db.database} on ${rec.oldDatabaseServer}`;
    }
    for (const ref of Object.values(rec.secretRefs)) {
      if (ref.startsWith(`${deps.secretPrefix}/${rec.id}/`)) await deps.secrets.delete(ref);
    }
    detail.dropped = db.database;
  } else {
    detail.databaseKept = rec.databaseName;
  }
  // 3. The row stays (events reference it) with status deleted; the gateway no longer routes it. Its conditions
  //    say what happened to the database.
  const message = detail.dropped
    ? `state: deleted; instance stopped, database ${rec.databaseName} dropped after a backup (${String(detail.backup)})`
    : `state: deleted; instance stopped, database ${rec.databaseName} kept (dropDatabase is not set)`;
  const conditions = downConditions(rec.conditions, 'deleted', message);
  return {
    patch: {
      status: 'deleted', desiredState: 'stopped', upstream: null, lastHealth: null, conditions, manifest: d.manifest, observedCommit: ctx.commit, appliedCommit: ctx.commit,
      // Dropped: a project created again under this id is provisioned anew.
      ...(detail.dropped ? { provisionedConnections: null, oldDatabaseServer: null, oldDatabaseCommit: null } : {}),
    },
    events: [{ action: 'delete', actor: ctx.actor, commit: ctx.commit, detail }],
  };
}
