// The daemon's own HTTP endpoint (loopback or the internal network only). Route modules under daemon/api/ (and
// the dashboard's, the metrics') each answer their paths; this file only orders them and guards them: every route
// needs the operator token except the few in `open`, which are safe without it (see api/public.ts).
import http from 'node:http';
import type { Logger } from 'pino';
import { describe } from './core/errors.ts';
import type { Registry } from './registry/registry.ts';
import type { PassResult } from './daemon.ts';
import { isOperator } from './api/auth.ts';
import { publicRoutes } from './api/public.ts';
import { ApiError, sendJson, type Route } from './api/respond.ts';
import { apiRoutes } from './api/v1.ts';
import { backupRoutes, type BackupApiDeps } from './api/backups.ts';
import { createDashboard, type DashboardOptions } from './dashboard/routes.ts';
import type { FleetMetrics } from './metrics/metrics.ts';
import { metricsRoute } from './metrics/route.ts';

export interface HttpDeps {
  registry: Registry;
  log: Logger;
  /** The HMAC secret of the push webhook; absent → the endpoint answers 404. */
  webhookSecret?: string;
  /** The operator token (`<prefix>/fleet/OPERATOR_TOKEN`); without one every guarded route answers 401. */
  operatorToken?: string;
  last(): PassResult;
  kick(fetch: boolean): void;
  /** Fetch now; the outcome of the first pass that starts after the call. */
  sync(): Promise<PassResult>;
  /** Backups through the API (daemon/backup); absent: those routes answer 404. */
  backups?: Omit<BackupApiDeps, 'registry'>;
  /** The dashboard's instance logs and hostname links (daemon/dashboard/routes.ts). */
  dashboard?: DashboardOptions;
  /** The daemon's Prometheus metrics (GET /metrics). */
  metrics?: FleetMetrics;
}

/** Where the token comes from, for the 401's sentence (a path in the secret store, never the value). */
const TOKEN_HINT = 'send Authorization: Bearer <token>; the token is the secret <prefix>/fleet/OPERATOR_TOKEN (fleet CLI commands read it themselves)';

export function startHttp(deps: HttpDeps, port: number, host = '127.0.0.1'): Promise<{ url: string; close(): Promise<void> }> {
  // Tried in order; the first that answers wins.
  // The dashboard checks the token itself: a browser without it is sent to the login form, not answered 401.
  const open: Route[] = [publicRoutes(deps), createDashboard(deps)];
  const guarded: Route[] = [
    ...(deps.backups ? [backupRoutes({ get registry() { return deps.registry; }, ...deps.backups })] : []),
    apiRoutes(deps), metricsRoute(deps),
  ];
  const server = http.createServer((req, res) => {
    handle(open, guarded, deps, req, res).catch((err) => {
      if (err instanceof ApiError) return sendJson(res, err.status, { error: err.message }, err.headers);
      deps.log.warn({ err: { message: describe(err) } }, 'http request failed');
      sendJson(res, 503, { error: describe(err) });
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address() as { port: number };
      resolve({
        url: `http://${host}:${addr.port}`,
        close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
      });
    });
  });
}

async function handle(open: Route[], guarded: Route[], deps: HttpDeps, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://daemon');
  for (const route of open) if (await route(req, res, url)) return;
  // Everything else needs the token, unknown paths included: a caller without it learns nothing about the routes.
  if (!isOperator(req, deps.operatorToken)) {
    throw new ApiError(401, `the operator token is required: ${TOKEN_HINT}`, { 'www-authenticate': 'Bearer realm="atomo-fleet"' });
  }
  for (const route of guarded) if (await route(req, res, url)) return;
  sendJson(res, 404, { error: `no route ${req.method} ${url.pathname}` });
}
