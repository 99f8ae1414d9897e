// Backups through the operator API, delegating to daemon/backup (the same functions `fleet backup|backups|restore`
// call): list a project's backups, take one now, ask the daemon to restore one. A restore names a backup of that
// project by its file name only: an API caller never makes the daemon read a path of its choosing.
import { join } from 'node:path';
import { FleetError, isFleetError } from '../core/errors.ts';
import type { Registry } from '../registry/registry.ts';
import { backupFolder, listBackups, parseBackupName } from '../backup/layout.ts';
import { takeBackup } from '../backup/take.ts';
import { requestRestore, waitForRequest, type RestoreSource } from '../backup/requests.ts';
import { ApiError, methodNotAllowed, readJsonObject, sendJson, type Route } from './respond.ts';
import { actorOf } from './views.ts';

export interface BackupApiDeps {
  registry: Registry;
  /** Where the Postgres server holding project databases is administered from. */
  adminUrl: string;
  /** The admin URL of the server holding a project's database, when fleet.yaml names more than one (default adminUrl). */
  adminFor?: (id: string) => Promise<string>;
  backupDir: string;
}

const ROUTE = /^\/api\/v1\/projects\/([a-z][a-z0-9_]{0,39})\/(backups|backup|restore)$/;
/** How long `?wait=1` on a restore waits for the daemon to finish it. */
const RESTORE_WAIT_MS = 15 * 60_000;

/** A FleetError from daemon/backup as an answer: what the caller got wrong, or what is missing. */
function asApiError(err: unknown): unknown {
  if (!isFleetError(err)) return err;
  const status = err.code === 'USAGE' ? 409 : err.code === 'RESTORE' ? 400 : err.code === 'DAEMON_UNREACHABLE' ? 503 : 500;
  return new ApiError(status, err.message);
}

export function backupRoutes(deps: BackupApiDeps): Route {
  return async (req, res, url) => {
    const m = ROUTE.exec(url.pathname);
    if (!m) return false;
    const [, id, what] = m;
    const method = req.method ?? 'GET';
    if (what === 'backups' ? method !== 'GET' : method !== 'POST') throw methodNotAllowed([what === 'backups' ? 'GET' : 'POST'], url.pathname);
    if (!(await deps.registry.get(id))) throw new ApiError(404, `no project "${id}" in the registry: see GET /api/v1/projects for the ids`);
    try {
      if (what === 'backups') {
        sendJson(res, 200, { backups: listBackups(deps.backupDir, id).map(({ file: _f, ...b }) => b) });
        return true;
      }
      const body = await readJsonObject(req);
      const actor = actorOf(body);
      if (what === 'backup') {
        const { file: _f, ...info } = await takeBackup({ adminUrl: deps.adminFor ? await deps.adminFor(id) : deps.adminUrl, backupDir: deps.backupDir, project: id, kind: 'manual', registry: deps.registry, actor });
        sendJson(res, 201, { backup: info });
        return true;
      }
      const requested = await requestRestore(deps.registry, deps.backupDir, id, restoreSource(deps.backupDir, id, body), actor);
      const answer = { request: requested.request.id, backup: requested.backup };
      const wait = url.searchParams.get('wait');
      if (wait !== '1' && wait !== 'true') {
        sendJson(res, 202, { ...answer, message: `restore of ${id} from ${requested.backup} requested: the daemon's next pass carries it out (see fleet events ${id})` });
        return true;
      }
      const done = await waitForRequest(deps.registry, requested.request.id, { signal: AbortSignal.timeout(RESTORE_WAIT_MS) });
      sendJson(res, 200, { ...answer, outcome: done.outcome });
      return true;
    } catch (err) {
      throw asApiError(err);
    }
  };
}

/** `{ "backup": "<file name>" }` (one of the project's own) or `{ "latest": true }`. */
function restoreSource(backupDir: string, id: string, body: Record<string, unknown>): RestoreSource {
  if (body.latest === true && body.backup === undefined) return { latest: true };
  const name = body.backup;
  if (typeof name !== 'string' || !parseBackupName(name)) {
    throw new FleetError('RESTORE', 'name the backup: {"backup": "<file name from GET /api/v1/projects/<id>/backups>"} or {"latest": true}');
  }
  return { from: join(backupFolder(backupDir, id), name) };
}
