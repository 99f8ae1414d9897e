// The routes that take no operator token: the daemon's liveness (compose's healthcheck), the git push webhook
// (its own HMAC signature) and Caddy's on-demand TLS permission check (it answers only yes or no for a host name).
import type { Registry } from '../registry/registry.ts';
import type { PassResult } from '../daemon.ts';
import { webhookResponse } from '../git/webhook.ts';
import { permissionResponse } from '../gateway/permission.ts';
import { readBody, sendJson, type Route } from './respond.ts';

export interface PublicDeps {
  registry: Registry;
  /** The HMAC secret of the push webhook; absent → the endpoint answers 404. */
  webhookSecret?: string;
  last(): PassResult;
  kick(fetch: boolean): void;
}

/** GitHub's push payloads stay well under this. */
const MAX_WEBHOOK_BODY = 5 * 1024 * 1024;

export function publicRoutes(deps: PublicDeps): Route {
  return async (req, res, url) => {
    if (req.method === 'GET' && url.pathname === '/healthz') {
      // Alive as long as the loop runs; whether the last pass converged is in the body, not the status.
      sendJson(res, 200, { ok: true, last: deps.last() });
      return true;
    }
    if (req.method === 'GET' && url.pathname === '/gateway/allow') {
      const r = permissionResponse(await deps.registry.list(), url);
      res.writeHead(r.status, { 'content-type': 'text/plain' }).end(r.body);
      return true;
    }
    if (req.method === 'POST' && url.pathname === '/hooks/git') {
      if (!deps.webhookSecret) {
        sendJson(res, 404, { error: 'webhook not configured: set git.webhookSecret in fleet.yaml' });
        return true;
      }
      const body = await readBody(req, MAX_WEBHOOK_BODY);
      const r = webhookResponse(deps.webhookSecret, req.headers, body);
      if (r.sync) deps.kick(true);
      sendJson(res, r.status, r.body);
      return true;
    }
    return false;
  };
}
