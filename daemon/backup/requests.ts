// Restore requests: the instance belongs to the running daemon (its driver), so a restore is asked for, not done,
// by the CLI or the API. The request is a registry row (`project_requests`); the daemon's pass plans a `restore`
// for it, the executor carries it out and closes the row with its outcome. Level-based: an open row is looked at
// every pass until it is done, and a row a daemon started but never finished (it died) is closed as interrupted.
import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { FleetError, describe } from '../core/errors.ts';
import type { RestoreRequest } from '../core/types.ts';
import type { ProjectRequest, Registry } from '../registry/registry.ts';
import { verifyArchive } from './archive.ts';
import { latestBackup } from './layout.ts';

export type RestoreSource = { from: string } | { latest: true };

export interface RestoreOutcome {
  ok: boolean;
  backup: string;
  message: string;
  preRestore?: string;
  entries?: number;
  /** Whether the instance runs again (false for a project whose state is stopped). */
  started?: boolean;
}

/**
 * Ask the running daemon to restore project `id` from a backup file, or the newest backup of the project. The file
 * must be a readable dump; nothing is recorded when no daemon holds the reconcile lock (DAEMON_UNREACHABLE).
 */
export async function requestRestore(registry: Registry, backupDir: string, id: string, source: RestoreSource, actor: string): Promise<{ request: ProjectRequest; backup: string; file: string }> {
  const rec = await registry.get(id);
  if (!rec) throw new FleetError('USAGE', `no project "${id}" in the registry; fleet status lists them`);
  if (rec.status === 'deleted') throw new FleetError('USAGE', `project ${id} is deleted: there is no database to restore into`, { project: id });
  if (rec.suspended) throw new FleetError('USAGE', `project ${id} is suspended (by ${rec.suspended.by}): resume it first with \`fleet resume ${id}\``, { project: id });
  let file: string;
  if ('latest' in source) {
    const latest = latestBackup(backupDir, id);
    if (!latest) throw new FleetError('USAGE', `no backups of ${id} under ${backupDir}: take one with \`fleet backup ${id}\``, { project: id });
    file = latest.file;
  } else {
    file = resolve(source.from);
    if (!existsSync(file) || !statSync(file).isFile()) throw new FleetError('USAGE', `no backup file ${file}; \`fleet backups ${id}\` lists the project's backups`, { project: id });
  }
  try {
    await verifyArchive(file);
  } catch (err) {
    throw new FleetError('RESTORE', `${basename(file)} is not a readable backup (pg_restore --list: ${describe(err)}); nothing was requested`, { project: id });
  }
  const request = await registry.addRequest(id, 'restore', { file, backup: basename(file) }, actor);
  if (!request) {
    throw new FleetError('DAEMON_UNREACHABLE', 'the daemon is not running (no daemon holds the reconcile lock on this registry): start it with npm start or fleet daemon, then run this again; nothing was requested', { project: id });
  }
  return { request, backup: basename(file), file };
}

/**
 * The open restore requests, by project, for the pass's plan. Requests a daemon started but never finished (it
 * stopped or died mid-restore) are closed as interrupted: the swap is one transaction, so the database is either
 * the old one or the restored one, never neither; the operator is told to look and ask again.
 */
export async function pendingRestores(registry: Registry): Promise<Map<string, RestoreRequest>> {
  const open = await registry.openRequests();
  for (const r of open) {
    if (r.kind !== 'restore') continue;
    if (r.startedAt) {
      const outcome: RestoreOutcome = {
        ok: false, backup: String(r.args.backup),
        message: 'interrupted: the daemon stopped during the restore; the database is either as it was or fully restored (see fleet events); ask again if needed',
      };
      await registry.markRequest(r.id, { outcome, event: { projectId: r.projectId, action: 'restore_failed', actor: 'fleet-daemon', detail: { request: r.id, ...outcome } } });
    }
  }
  return restoreRequests(open);
}

/** The restore requests not started yet, by project, as the plan takes them (pure: `fleet plan` reads them too). */
export function restoreRequests(open: ProjectRequest[]): Map<string, RestoreRequest> {
  const out = new Map<string, RestoreRequest>();
  for (const r of open) {
    if (r.kind !== 'restore' || r.startedAt) continue;
    out.set(r.projectId, { request: r.id, backup: String(r.args.backup), file: String(r.args.file), by: r.requestedBy ?? 'an operator' });
  }
  return out;
}

/**
 * Wait for a request to be done, reporting its progress; the daemon going away first is an error, and a request it
 * never started is withdrawn, so nothing is left for a later daemon to do by surprise.
 */
export async function waitForRequest(registry: Registry, id: number, o: { pollMs?: number; onProgress?: (p: Record<string, unknown>) => void; signal?: AbortSignal } = {}): Promise<ProjectRequest> {
  const pollMs = o.pollMs ?? 500;
  let checks = 0;
  for (;;) {
    const r = await registry.getRequest(id);
    if (!r) throw new FleetError('RESTORE', `request ${id} is gone from the registry`);
    if (r.doneAt) return r;
    if (r.progress) o.onProgress?.(r.progress);
    // Every few polls: is a daemon still there to carry it out?
    if (++checks % 4 === 0 && !(await registry.daemonRunning())) {
      const withdrawn = await registry.withdrawRequest(id);
      throw new FleetError('DAEMON_UNREACHABLE', withdrawn
        ? 'the daemon stopped before it picked the request up; it was withdrawn: start the daemon and run this again'
        : 'the daemon stopped during the restore: start it again; it closes the request as interrupted (see fleet events)');
    }
    if (o.signal?.aborted) {
      const withdrawn = await registry.withdrawRequest(id);
      throw new FleetError('RESTORE', withdrawn ? 'stopped waiting; the request was withdrawn before the daemon started it' : 'stopped waiting; the daemon carries the restore on (see fleet events)');
    }
    await new Promise((r2) => setTimeout(r2, pollMs));
  }
}
