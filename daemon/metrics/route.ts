// GET /metrics: the daemon's Prometheus metrics, for the operator token only (like every route but /healthz).
// Prometheus sends it with `authorization: { credentials: <token> }` (type Bearer) in its scrape config.
import type http from 'node:http';
import { isOperator } from '../api/auth.ts';
import type { FleetMetrics } from './metrics.ts';

export interface MetricsRouteDeps {
  metrics?: FleetMetrics;
  operatorToken?: string;
}

export function metricsRoute(deps: MetricsRouteDeps): (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<boolean> {
  return async (req, res, url) => {
    if (url.pathname !== '/metrics' || !deps.metrics) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' }).end(JSON.stringify({ error: 'use GET /metrics' }));
      return true;
    }
    if (!isOperator(req, deps.operatorToken)) {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="atomo-fleet"', 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'the operator token is required: send Authorization: Bearer <token> (the secret <prefix>/fleet/OPERATOR_TOKEN)' }));
      return true;
    }
    const body = await deps.metrics.render();
    res.writeHead(200, { 'content-type': deps.metrics.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
