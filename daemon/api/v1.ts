// The operator API, JSON under /api/v1 (and the older GET /status). Every route here needs the operator token;
// http.ts checks it before a request reaches this module. Reads come from the registry; writes are operator
// requests recorded as rows and events (operations.ts), which the daemon's next pass carries out.
import type { Registry } from '../registry/registry.ts';
import type { PassResult } from '../daemon.ts';
import { requestRestart, resume, suspend } from './operations.ts';
import { ApiError, methodNotAllowed, readJsonObject, sendJson, type Route } from './respond.ts';
import { actorOf, eventsPage, eventsQuery, projectDetail, projectSummary } from './views.ts';

export interface ApiDeps {
  registry: Registry;
  last(): PassResult;
  kick(fetch: boolean): void;
  /** Fetch now; resolves with the outcome of the first pass that starts after the call (Daemon.syncNow). */
  sync(): Promise<PassResult>;
}

export const API_PREFIX = '/api/v1';
/** How long `POST /api/v1/sync?wait=1` waits by default, and at most (`&timeout=` seconds). */
const SYNC_WAIT_DEFAULT_S = 120;
const SYNC_WAIT_MAX_S = 600;

const PROJECT_ACTION = /^\/api\/v1\/projects\/([^/]+)\/(restart|suspend|resume)$/;
const PROJECT = /^\/api\/v1\/projects\/([^/]+)$/;

export function apiRoutes(deps: ApiDeps): Route {
  return async (req, res, url) => {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/status') {
      if (method !== 'GET') throw methodNotAllowed(['GET'], path);
      const rows = await deps.registry.list();
      sendJson(res, 200, { last: deps.last(), projects: rows.map(({ manifest: _m, ...r }) => r) });
      return true;
    }
    if (path !== API_PREFIX && !path.startsWith(`${API_PREFIX}/`)) return false;
    if (path === `${API_PREFIX}/projects`) {
      if (method !== 'GET') throw methodNotAllowed(['GET'], path);
      sendJson(res, 200, { projects: (await deps.registry.list()).map(projectSummary) });
      return true;
    }
    const action = PROJECT_ACTION.exec(path);
    if (action) {
      if (method !== 'POST') throw methodNotAllowed(['POST'], path);
      const [, id, verb] = action;
      const actor = actorOf(await readJsonObject(req));
      const answer: object = verb === 'restart' ? await requestRestart(deps.registry, idOf(id), actor)
        : verb === 'suspend' ? await suspend(deps.registry, idOf(id), actor)
          : await resume(deps.registry, idOf(id), actor);
      // The registry changed: the daemon looks at it now rather than at its next tick.
      deps.kick(false);
      sendJson(res, verb === 'restart' ? 202 : 200, answer);
      return true;
    }
    const one = PROJECT.exec(path);
    if (one) {
      if (method !== 'GET') throw methodNotAllowed(['GET'], path);
      const id = idOf(one[1]);
      const r = await deps.registry.get(id);
      if (!r) throw new ApiError(404, `no project "${id}" in the registry: see GET /api/v1/projects for the ids`);
      sendJson(res, 200, { project: projectDetail(r) });
      return true;
    }
    if (path === `${API_PREFIX}/events`) {
      if (method !== 'GET') throw methodNotAllowed(['GET'], path);
      const q = eventsQuery(url);
      if (q.project && !(await deps.registry.get(q.project))) throw new ApiError(404, `no project "${q.project}" in the registry`);
      // One more than asked: whether there is a next page, without a count query.
      const rows = await deps.registry.eventsPage({ project: q.project, before: q.before, limit: q.limit + 1 });
      sendJson(res, 200, eventsPage(rows, q.limit));
      return true;
    }
    if (path === `${API_PREFIX}/sync`) {
      if (method !== 'POST') throw methodNotAllowed(['POST'], path);
      await readJsonObject(req);
      return sync(deps, url, res);
    }
    throw new ApiError(404, `no API route ${method} ${path}: see the README's "Operator API" for the routes`);
  };
}

/** A path segment as a project id; a malformed escape is the client's error, not the daemon's. */
function idOf(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ApiError(400, 'the project id in the path is not valid URL encoding');
  }
}

async function sync(deps: ApiDeps, url: URL, res: Parameters<Route>[1]): Promise<true> {
  const wait = url.searchParams.get('wait');
  if (wait !== '1' && wait !== 'true') {
    deps.kick(true);
    sendJson(res, 202, { message: 'sync started: the daemon fetches the tracked branch and converges it (add ?wait=1 to wait for the outcome)' });
    return true;
  }
  const t = url.searchParams.get('timeout');
  const seconds = t === null ? SYNC_WAIT_DEFAULT_S : Number(t);
  if (!/^\d+$/.test(t ?? '0') || seconds < 1 || seconds > SYNC_WAIT_MAX_S) throw new ApiError(400, `timeout must be a whole number of seconds from 1 to ${SYNC_WAIT_MAX_S}`);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), seconds * 1000); });
  const result = await Promise.race([deps.sync(), late]);
  clearTimeout(timer);
  if (!result) throw new ApiError(504, `the pass did not finish within ${seconds} s; it goes on: see fleet status, or ask again with a longer ?timeout=`);
  sendJson(res, 200, { commit: result.commit, ok: result.ok, ...(result.error ? { error: result.error } : {}), ...(result.looked !== undefined ? { looked: result.looked } : {}) });
  return true;
}
