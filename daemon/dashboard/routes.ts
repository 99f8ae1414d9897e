// The dashboard's routes on the daemon's HTTP endpoint: `/` (the fleet), `/projects/<id>` (events and instance
// log), `/login` and `/logout`. Thin I/O around the pure renderers: read the registry (and the driver for logs),
// render, send. Every page needs the operator token, presented as the `fleet_operator` cookie the login form sets
// (HttpOnly, SameSite=Strict) or as a bearer header; the pages only read, so nothing here changes the fleet.
import type http from 'node:http';
import type { Logger } from 'pino';
import { OPERATOR_COOKIE, isOperator, tokenMatches } from '../api/auth.ts';
import { describe } from '../core/errors.ts';
import type { Driver } from '../core/types.ts';
import type { Registry } from '../registry/registry.ts';
import type { Route } from '../api/respond.ts';
import { collectLines } from '../drivers/log-file.ts';
import { escapeHtml } from './html.ts';
import { renderFleetPage, renderLoginPage, renderProjectPage, type GatewayLinks } from './render.ts';

/** What the dashboard reads; the daemon's HttpDeps fit it as they are (read per request: the registry comes late). */
export interface DashboardDeps {
  registry: Pick<Registry, 'list' | 'get' | 'events' | 'getState'>;
  log: Logger;
  /** The operator token; absent → nobody can log in (the login page says so). */
  operatorToken?: string;
  last(): { commit: string | null; ok: boolean; error?: string };
  dashboard?: DashboardOptions;
}

export interface DashboardOptions {
  /** For the instance log on a project page; a driver without `logs` shows a note instead. */
  driver?: Pick<Driver, 'logs'>;
  /** How hostnames are linked (fleet.yaml gateway); default plain http on port 80. */
  links?: GatewayLinks;
  refreshSeconds?: number;
  now?: () => Date;
}

const LOG_LINES = 200;
const EVENTS = 25;
const MAX_FORM = 4096;
const LOG_TIMEOUT_MS = 3000;

/** Where a login may send the browser back to: one of the dashboard's own pages, never another origin. */
function safeNext(next: string | null | undefined): string {
  return next && /^\/(projects\/[A-Za-z0-9_%.-]*)?$/.test(next) ? next : '/';
}

const SECURITY_HEADERS = {
  // No script at all; inline style only; forms post only here; never framed.
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function sendHtml(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...SECURITY_HEADERS, ...headers }).end(body);
}

function redirect(res: http.ServerResponse, location: string, headers: Record<string, string> = {}): void {
  res.writeHead(303, { location, ...SECURITY_HEADERS, ...headers }).end();
}

function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
      if (body.length > MAX_FORM) req.destroy(new Error('login form too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

const cookie = (value: string, extra = '') => `${OPERATOR_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/${extra}`;

/** The last lines of a project's instance log, bounded in time (an engine that hangs must not hang the page). */
async function logLinesOf(driver: Pick<Driver, 'logs'> | undefined, id: string): Promise<string[] | null> {
  if (!driver?.logs) return null;
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => { ac.abort(); reject(new Error(`no answer within ${LOG_TIMEOUT_MS / 1000} s`)); }, LOG_TIMEOUT_MS);
  });
  try {
    return await Promise.race([collectLines(driver.logs(id, { lines: LOG_LINES, signal: ac.signal })), timeout]);
  } catch (err) {
    return [`(the instance log could not be read: ${describe(err)})`];
  } finally {
    clearTimeout(timer);
  }
}

/** A path segment decoded, or as it came when it is not valid percent-encoding (then no project has that id). */
function decodedOr(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** How the gateway is reached from a browser, from fleet.yaml: https once Caddy serves TLS, the listen port. */
export function gatewayLinks(gateway: { listen: string; tls: string }): GatewayLinks {
  const port = Number(gateway.listen.split(':').pop());
  return { scheme: gateway.tls === 'off' ? 'http' : 'https', ...(Number.isInteger(port) && port > 0 ? { port } : {}) };
}

export function createDashboard(deps: DashboardDeps): Route {
  const opts = deps.dashboard ?? {};
  const now = opts.now ?? (() => new Date());
  const refreshSeconds = opts.refreshSeconds ?? 5;
  const links = opts.links ?? { scheme: 'http' };

  async function fleetPage(res: http.ServerResponse): Promise<void> {
    const [projects, events, source, invalid] = await Promise.all([
      deps.registry.list(), deps.registry.events(undefined, EVENTS),
      deps.registry.getState<{ ok: boolean; message?: string; commit?: string; at?: string }>('source'),
      deps.registry.getState<{ commit: string; projects: { id: string; issues: string[] }[] }>('invalid'),
    ]);
    sendHtml(res, 200, renderFleetPage({
      now: now(), refreshSeconds, projects, events: [...events].reverse(), last: deps.last(), source, invalid, links,
    }));
  }

  async function projectPage(res: http.ServerResponse, id: string): Promise<void> {
    const project = await deps.registry.get(id);
    if (!project) {
      sendHtml(res, 404, `<!doctype html><meta charset="utf-8"><title>not found</title><p>No project "${escapeHtml(id)}" in the registry. <a href="/">Back to the fleet</a></p>`);
      return;
    }
    const [events, logLines] = await Promise.all([deps.registry.events(id, EVENTS * 2), logLinesOf(opts.driver, id)]);
    sendHtml(res, 200, renderProjectPage({ now: now(), refreshSeconds, project, events: [...events].reverse(), logLines, links }));
  }

  return async function dashboard(req, res, url) {
    const { pathname } = url;
    if (pathname === '/login') {
      if (req.method === 'GET') {
        sendHtml(res, 200, renderLoginPage({ configured: !!deps.operatorToken, next: safeNext(url.searchParams.get('next')) }));
        return true;
      }
      if (req.method !== 'POST') return false;
      const form = await readForm(req);
      const next = safeNext(form.get('next'));
      if (!tokenMatches(form.get('token') ?? undefined, deps.operatorToken)) {
        deps.log.warn({ remote: req.socket.remoteAddress }, 'dashboard login refused: not the operator token');
        sendHtml(res, 401, renderLoginPage({ configured: !!deps.operatorToken, next, error: 'That is not the operator token. Copy it from the secret store and try again.' }));
        return true;
      }
      redirect(res, next, { 'set-cookie': cookie(encodeURIComponent(form.get('token')!)) });
      return true;
    }
    if (pathname === '/logout' && req.method === 'POST') {
      redirect(res, '/login', { 'set-cookie': cookie('', '; Max-Age=0') });
      return true;
    }
    const projectMatch = /^\/projects\/([^/]+)$/.exec(pathname);
    if (req.method !== 'GET' || (pathname !== '/' && !projectMatch)) return false;
    if (!isOperator(req, deps.operatorToken)) {
      redirect(res, `/login?next=${encodeURIComponent(pathname)}`);
      return true;
    }
    if (projectMatch) await projectPage(res, decodedOr(projectMatch[1]));
    else await fleetPage(res);
    return true;
  };
}
