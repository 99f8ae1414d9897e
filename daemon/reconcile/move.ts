// Moving a project's database to another fleet.yaml Postgres server, and dropping the copy a move left behind. The
// plan decides (move_database, drop_old_database); these steps carry it out so that a failure loses nothing:
//   0. both servers resolved and the target asked before anything stops: an unreachable target costs no downtime;
//   1. the instance stops: nothing may write while the data is copied. (Stopping is the simple, honest choice: a
//      read-only mode would need the application's cooperation, and writes during the copy would be lost.)
//   2. a fresh verified dump of the source (kind `pre-move`);
//   3. the role and database on the target as provisioning makes them: same role name, password and connection
//      limit, the fleet's marker, the database owned by the role, CONNECT for that role only; nothing else;
//   4. the dump restored there as the role (backup/restore.ts: scratch database, every object the role's, one swap;
//      it first dumps what it replaces, an empty database or the leftover of an interrupted move, as `pre-restore`);
//   5. DATABASE_URL points at the target (same role and password, the target's host);
//   6. the registry records the new server and the kept copy, with `database_moved`, at once and before the
//      instance starts: from then on no pass plans a move from the stale copy;
//   7. the instance starts again.
// A failure before 6 puts DATABASE_URL back, starts the instance on the source as before, records
// `database_move_failed` and retries with backoff. A daemon killed before 6 leaves the registry on the source: the
// next pass plans the move again (a move replaces the pass's start), and the target's leftovers are replaced.
import { rmSync } from 'node:fs';
import { basename } from 'node:path';
import { FleetError, describe, isFleetError } from '../core/errors.ts';
import type { Target } from '../core/plan.ts';
import type { Action, Instance } from '../core/types.ts';
import { backupFolder, listBackups } from '../backup/layout.ts';
import { restoreDatabase } from '../backup/restore.ts';
import { backupDatabase, databaseNames, dropDatabase, ensureDatabase, instanceDatabaseUrl, withAdmin } from '../provision/database.ts';
import type { ResolvedServer } from '../postgres/servers.ts';
import type { NewEvent, ProjectRecord } from '../registry/registry.ts';
import { specHashOf, startInstance, stopInstance, type Step } from './instance.ts';
import type { ReconcileContext } from './context.ts';

type MoveAction = Extract<Action, { kind: 'move_database' }>;
type DropOldAction = Extract<Action, { kind: 'drop_old_database' }>;

/** The backoff key of a failed move: retried with backoff towards the same server, at once towards another. */
export const moveKey = (id: string, to: string) => `move:${id}:${to}`;

export type MoveOutcome =
  | { ok: true; patch: Partial<ProjectRecord>; started: Instance | null; startError?: unknown }
  | { ok: false; error: unknown; events: NewEvent[]; started: Instance | null };

/** The admin URL of the server a project's database lives on (the registry's `database_server`). */
export async function serverOfRecord(ctx: ReconcileContext, rec: ProjectRecord): Promise<ResolvedServer> {
  return ctx.deps.servers.get(rec.databaseServer ?? 'main');
}

export async function moveDatabase(ctx: ReconcileContext, rec: ProjectRecord, a: MoveAction, target: Target | null): Promise<MoveOutcome> {
  const { deps } = ctx;
  const db = databaseNames(rec.id);
  const detail = { reason: a.reason, from: a.from, to: a.to };
  let stopped = false;
  let restoreSecret: string | null = null;
  // Dumps this try writes (pre-move, and the restore's pre-restore of the target): removed if it fails, see below.
  const before = new Set(listBackups(deps.backupDir, rec.id).map((b) => b.file));
  try {
    // 0. Both servers known, the target answers, the role's password read: nothing has changed yet.
    const from = await deps.servers.get(a.from);
    const to = await deps.servers.get(a.to);
    await withAdmin(to.adminUrl, rec.id, (c) => c.query('SELECT 1'), { code: 'PROVISION', doing: `reach Postgres server ${a.to} for` });
    const current = await deps.secrets.get(rec.databaseUrlRef);
    const password = decodeURIComponent(new URL(current).password);
    const targetUrl = instanceDatabaseUrl(to.adminUrl, db, password, to.instanceHost);
    // A daemon killed after step 5 left DATABASE_URL on the target: what the source URL is, is what goes back.
    const sourceUrl = current === targetUrl ? instanceDatabaseUrl(from.adminUrl, db, password, from.instanceHost) : current;
    if (sourceUrl !== current) restoreSecret = sourceUrl;
    // 1. Nothing writes while the data is copied.
    if (ctx.instances) {
      await stopInstance(ctx, rec.id, 'database move');
      stopped = true;
    }
    // 2.-4. A fresh dump of the source, restored on the target into the project's own role and database.
    const dump = await backupDatabase(from.adminUrl, db, backupFolder(deps.backupDir, rec.id), { kind: 'pre-move', commit: rec.appliedCommit });
    await ensureDatabase(to.adminUrl, db, password, { connectionLimit: rec.provisionedConnections ?? undefined });
    const restored = await restoreDatabase({ adminUrl: to.adminUrl, backupDir: deps.backupDir, project: rec.id, file: dump, rolePassword: password, commit: rec.appliedCommit });
    // 5. The instance's DATABASE_URL names the target.
    restoreSecret = sourceUrl;
    await deps.secrets.put(rec.databaseUrlRef, targetUrl);
    // 6. Recorded before the instance starts on the target (see the top of this file).
    const patch: Partial<ProjectRecord> = { databaseServer: a.to, oldDatabaseServer: a.from, oldDatabaseCommit: ctx.commit };
    await deps.registry.updateWithEvents(rec.id, patch, [{
      action: 'database_moved', actor: ctx.actor, commit: ctx.commit,
      detail: { ...detail, backup: basename(dump), entries: restored.entries, kept: `${db.database} on ${a.from}` },
    }]);
    restoreSecret = null;
    deps.retries.forget(moveKey(rec.id, a.to));
    ctx.log.info({ from: a.from, to: a.to, backup: basename(dump) }, 'database moved');
    // 7. The instance comes back, now on the target; a failed start is the crash backoff's, the move is done.
    try {
      return { ok: true, patch, started: await startAgain(ctx, { ...rec, ...patch }, target, stopped) };
    } catch (err) {
      return { ok: true, patch, started: null, startError: err };
    }
  } catch (err) {
    // A failed try changed nothing on the source, and what it dumped of the target is a copy of the source at best:
    // its dumps go, so retries that keep failing (a database the role cannot restore) never fill the disk every
    // project's backups share.
    for (const b of listBackups(deps.backupDir, rec.id)) {
      if (!before.has(b.file) && (b.kind === 'pre-move' || b.kind === 'pre-restore')) rmSync(b.file, { force: true });
    }
    deps.retries.failedStart(moveKey(rec.id, a.to), deps.now());
    const message = `database move ${a.from} → ${a.to} failed; ${rec.id} stays on ${a.from}, nothing was lost: ${describe(err)}`;
    ctx.log.warn({ from: a.from, to: a.to, err: { message: describe(err) } }, 'database move failed');
    let started: Instance | null = null;
    let extra = '';
    try {
      if (restoreSecret !== null) await deps.secrets.put(rec.databaseUrlRef, restoreSecret);
      started = await startAgain(ctx, rec, target, stopped);
    } catch (again) {
      extra = `; the instance did not start again: ${describe(again)}`;
    }
    const error = new FleetError('PROVISION', `${message}${extra}`, { project: rec.id, cause: err });
    // Recorded once while it fails the same way (the Reconciling condition holds it between tries).
    const events: NewEvent[] = sameFailure(rec, error) ? [] : [{ action: 'database_move_failed', actor: ctx.actor, commit: ctx.commit, detail: { ...detail, message: error.message } }];
    return { ok: false, error, started, events };
  }
}

/** Start the instance again when it should run and does not (stopped by the move, or down before it). */
async function startAgain(ctx: ReconcileContext, rec: ProjectRecord, target: Target | null, stopped: boolean): Promise<Instance | null> {
  if (!target || !ctx.instances) return null;
  if (!stopped && ctx.instances.get(rec.id)?.running) return null;
  return startInstance(ctx, rec, target.manifest, specHashOf(ctx.deps, rec, target.manifest, target.schemaDigest));
}

/** The backoff key of a failed drop of an old copy: each try takes a fresh backup first, so tries are paced. */
export const dropKey = (id: string, server: string) => `drop-old:${id}:${server}`;

export type DropOutcome = { ok: true; step: Step } | { ok: false; error: FleetError; events: NewEvent[] };

/**
 * The copy a move left on the old server, dropped after a fresh backup (kind `pre-delete`: a failed backup keeps
 * it). Never the server the project lives on, whatever the plan says. A failure is retried with backoff and
 * recorded once (`database_old_drop_failed`) while it fails the same way, not at every try.
 */
export async function dropOldDatabase(ctx: ReconcileContext, rec: ProjectRecord, a: DropOldAction): Promise<DropOutcome> {
  const server = a.server ?? rec.oldDatabaseServer;
  if (!server) return { ok: true, step: { patch: {}, events: [] } };
  const db = databaseNames(rec.id);
  if (server === (rec.databaseServer ?? 'main')) {
    throw new FleetError('DELETE_GUARD', `refusing to drop ${db.database} on ${server}: the project's database lives there; nothing was changed`, { project: rec.id });
  }
  try {
    const step = await dropOld(ctx, rec, a, server);
    ctx.deps.retries.forget(dropKey(rec.id, server));
    return { ok: true, step };
  } catch (err) {
    ctx.deps.retries.failedStart(dropKey(rec.id, server), ctx.deps.now());
    const error = new FleetError(isFleetError(err) ? err.code : 'PROVISION', `dropping the old copy of ${db.database} on ${server} failed, it is kept and retried with backoff: ${describe(err)}`, { project: rec.id, cause: err });
    ctx.log.warn({ server, err: { message: describe(err) } }, 'dropping the old copy of the database failed');
    return {
      ok: false, error, events: sameFailure(rec, error) ? [] : [{
        action: 'database_old_drop_failed', actor: ctx.actor, commit: ctx.commit, detail: { reason: a.reason, server, message: error.message },
      }],
    };
  }
}

async function dropOld(ctx: ReconcileContext, rec: ProjectRecord, a: DropOldAction, server: string): Promise<Step> {
  const { deps } = ctx;
  const db = databaseNames(rec.id);
  const s = await deps.servers.get(server);
  // A try that dropped the database but not its role (killed, or DROP ROLE refused) has nothing left to back up.
  const present = await withAdmin(s.adminUrl, rec.id, async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.database])).rows.length > 0,
    { code: 'PROVISION', doing: `reach Postgres server ${server} for` });
  const backup = present ? await backupDatabase(s.adminUrl, db, backupFolder(deps.backupDir, rec.id), { kind: 'pre-delete', commit: rec.appliedCommit }) : null;
  await dropDatabase(s.adminUrl, db);
  ctx.log.info({ server, backup: backup && basename(backup) }, 'old copy of the database dropped');
  return {
    patch: { oldDatabaseServer: null, oldDatabaseCommit: null },
    events: [{ action: 'database_old_dropped', actor: ctx.actor, commit: ctx.commit, detail: { reason: a.reason, server, dropped: db.database, backup: backup ? basename(backup) : null } }],
  };
}

/** The failure the project's Reconciling condition already records (the reconciler's own event dedupe, failureStep). */
function sameFailure(rec: ProjectRecord, err: FleetError): boolean {
  const prev = rec.conditions.find((c) => c.type === 'Reconciling');
  return prev?.status === false && prev.reason === err.code && prev.message === err.message;
}

