// Thin client for Caddy's admin API: send a rendered config only when Caddy runs something else.
// Caddy is the truth: each apply reads GET /config/, so a Caddy that restarted empty is noticed and reloaded.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { Logger } from 'pino';
import { FleetError } from '../errors.ts';
import { canonicalJson } from '../canonical.ts';

export interface CaddyGateway {
  /** Load `config` unless Caddy already runs exactly it. Throws FleetError('GATEWAY') on failure. */
  apply(config: object): Promise<{ changed: boolean }>;
  /** The config Caddy runs now, or null when it runs none. */
  current(): Promise<object | null>;
  /** Hash of the last config this client loaded or found already running (null before the first apply). */
  lastAppliedHash(): string | null;
}

const TIMEOUT_MS = 10_000;

export function createCaddyGateway(opts: { adminUrl: string; log: Logger; timeoutMs?: number }): CaddyGateway {
  const base = opts.adminUrl.replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? TIMEOUT_MS;
  const log = opts.log.child({ component: 'gateway' });
  let lastHash: string | null = null;

  async function call(method: 'GET' | 'POST', path: string, body?: string): Promise<{ status: number; text: string }> {
    try {
      return await request(base, method, path, body, timeoutMs);
    } catch (err) {
      throw new FleetError(
        'GATEWAY',
        `Caddy admin API at ${base} is unreachable (${reason(err)}): start Caddy or fix gateway.admin in fleet.yaml`,
        { cause: err },
      );
    }
  }

  async function current(): Promise<object | null> {
    const res = await call('GET', '/config/');
    const text = res.text;
    if (res.status !== 200) throw new FleetError('GATEWAY', `Caddy admin API at ${base} answered GET /config/ with ${res.status}: ${caddyMessage(text)}`);
    let parsed: unknown;
    try {
      parsed = text.trim() === '' ? null : JSON.parse(text);
    } catch (err) {
      throw new FleetError('GATEWAY', `Caddy admin API at ${base} answered GET /config/ with something that is not JSON`, { cause: err });
    }
    return parsed === null || typeof parsed !== 'object' ? null : (parsed as object);
  }

  async function apply(config: object): Promise<{ changed: boolean }> {
    const wanted = canonicalJson(config);
    const hash = sha256(wanted);
    const running = await current();
    if (running !== null && sha256(canonicalJson(running)) === hash) {
      lastHash = hash;
      return { changed: false };
    }
    const started = Date.now();
    const res = await call('POST', '/load', JSON.stringify(config));
    const text = res.text;
    if (res.status !== 200) {
      // Caddy keeps running the previous config when a load fails.
      throw new FleetError('GATEWAY', `Caddy rejected the gateway config (${res.status}): ${caddyMessage(text)}`);
    }
    log.debug({ hash: hash.slice(0, 12), ms: Date.now() - started, previous: lastHash?.slice(0, 12) ?? null }, 'gateway config loaded');
    lastHash = hash;
    return { changed: true };
  }

  return { apply, current, lastAppliedHash: () => lastHash };
}

/**
 * One admin request on its own connection: Caddy restarts its admin server on every load, which closes
 * kept-alive connections under a pooled client ("other side closed"). A request per tick needs no pool.
 */
function request(base: string, method: string, path: string, body: string | undefined, timeoutMs: number) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      // We only POST after seeing a difference, so Caddy must not skip the load as "same config".
      headers['Cache-Control'] = 'must-revalidate';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const req = http.request(new URL(path, `${base}/`), { method, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(body);
  });
}

/** JSON with object keys sorted at every level: Caddy returns the config it stores with its own key order. */

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function caddyMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
  } catch {
    // not JSON: use the text as it is
  }
  return text.trim().slice(0, 2000) || '(empty answer)';
}

function reason(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.message : String(err);
}
