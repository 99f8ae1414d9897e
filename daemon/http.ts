// The daemon's own HTTP endpoint (loopback or the internal network only): its health, the fleet's status,
// the git push webhook, and Caddy's on-demand TLS permission check.
import http from 'node:http';
import type { Logger } from 'pino';
import { describe } from './core/errors.ts';
import { webhookResponse } from './git/webhook.ts';
import { permissionResponse } from './gateway/permission.ts';
import type { Registry } from './registry/registry.ts';
import type { PassResult } from './daemon.ts';

export interface HttpDeps {
  registry: Registry;
  log: Logger;
  /** The HMAC secret of the push webhook; absent → the endpoint answers 404. */
  webhookSecret?: string;
  last(): PassResult;
  kick(fetch: boolean): void;
}

const MAX_BODY = 5 * 1024 * 1024;

export function startHttp(deps: HttpDeps, port: number, host = '127.0.0.1'): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    handle(deps, req, res).catch((err) => {
      deps.log.warn({ err: { message: describe(err) } }, 'http request failed');
      send(res, 503, { error: describe(err) });
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

async function handle(deps: HttpDeps, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://daemon');
  if (req.method === 'GET' && url.pathname === '/healthz') {
    // Alive as long as the loop runs; whether the last pass converged is in the body, not the status.
    return send(res, 200, { ok: true, last: deps.last() });
  }
  if (req.method === 'GET' && url.pathname === '/status') {
    const rows = await deps.registry.list();
    return send(res, 200, { last: deps.last(), projects: rows.map(({ manifest: _m, ...r }) => r) });
  }
  if (req.method === 'GET' && url.pathname === '/gateway/allow') {
    const r = permissionResponse(await deps.registry.list(), url);
    res.writeHead(r.status, { 'content-type': 'text/plain' }).end(r.body);
    return;
  }
  if (req.method === 'POST' && url.pathname === '/hooks/git') {
    if (!deps.webhookSecret) return send(res, 404, { error: 'webhook not configured: set git.webhookSecret in fleet.yaml' });
    const body = await readBody(req);
    const r = webhookResponse(deps.webhookSecret, req.headers, body);
    if (r.sync) deps.kick(true);
    return send(res, r.status, typeof r.body === 'string' ? { message: r.body } : r.body);
  }
  send(res, 404, { error: 'not found' });
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy(new Error('body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
