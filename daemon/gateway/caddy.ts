// Thin client for Caddy's admin API: send a rendered config only when Caddy runs something else.
// Caddy is the truth: the config it runs carries a tag (GET /id/<tag> says whether it still runs ours), and a
// verifying apply reads GET /config/ and compares, so a Caddy that restarted empty or was edited is reloaded.
// The admin API is reached over http(s) (`http://caddy:2019`) or a unix socket (`unix:///run/caddy-admin/admin.sock`).
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import { FleetError } from '../core/errors.ts';
import { canonicalJson } from '../core/canonical.ts';

export interface CaddyGateway {
  /**
   * Load `config` unless Caddy already runs exactly it. Throws FleetError('GATEWAY') on failure: a
   * CaddyRejectedError when Caddy answered that the config is invalid (it keeps running the previous one).
   */
  apply(config: object, opts?: { verify?: boolean }): Promise<{ changed: boolean }>;
  /**
   * Would Caddy accept `config`? Caddy 2.6 has no validation-only endpoint (`/adapt` does not provision, `caddy
   * validate` needs the binary and its version next to the daemon), so the HTTP servers of `config` are loaded as
   * extra servers beside what Caddy runs now, on a loopback port nobody is sent to: what Caddy serves does not
   * change (but, as any load, it restarts Caddy's listeners). They stay until the next apply replaces the whole
   * config. Covers the HTTP app only, not TLS automation. Throws FleetError('GATEWAY') when Caddy cannot be asked.
   */
  check(config: object): Promise<{ ok: true } | { ok: false; message: string }>;
  /** The config Caddy runs now, or null when it runs none. */
  current(): Promise<object | null>;
  /** Hash of the last config this client loaded or found already running (null before the first apply). */
  lastAppliedHash(): string | null;
  /**
   * Does Caddy still run the config this client last applied? One small request (the config's tag, an `@id` on its
   * admin object), so a pass with nothing new for the gateway need not read and compare the whole config; a Caddy
   * that restarted empty or was given another config answers no.
   */
  stillApplied(): Promise<boolean>;
}

/** Caddy answered a load with 4xx: the config is invalid (not: Caddy is down or failed on its side). */
export class CaddyRejectedError extends FleetError {
  constructor(readonly status: number, readonly caddyMessage: string) {
    super('GATEWAY', `Caddy rejected the gateway config (${status}): ${caddyMessage}`);
    this.name = 'CaddyRejectedError';
  }
}

export function isCaddyRejection(err: unknown): err is CaddyRejectedError {
  return err instanceof CaddyRejectedError;
}

const TIMEOUT_MS = 10_000;
const RETRIED = new Set(['ECONNRESET', 'EPIPE', 'socket hang up']);
/** Name prefix of the servers `check` adds beside the running ones. */
export const CHECK_SERVER = 'atomo_check';

export function createCaddyGateway(opts: { adminUrl: string; log: Logger; timeoutMs?: number }): CaddyGateway {
  const base = opts.adminUrl.replace(/\/+$/, '');
  const target = adminTarget(base);
  const timeoutMs = opts.timeoutMs ?? TIMEOUT_MS;
  const log = opts.log.child({ component: 'gateway' });
  let lastHash: string | null = null;

  async function call(method: 'GET' | 'POST', path: string, body?: string): Promise<{ status: number; text: string }> {
    try {
      try {
        return await request(target, method, path, body, timeoutMs);
      } catch (err) {
        // A connection cut while Caddy swaps its admin server after a load: ask once more (a load is idempotent).
        if (!RETRIED.has(reason(err))) throw err;
        await new Promise((r) => setTimeout(r, 50));
        return await request(target, method, path, body, timeoutMs);
      }
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

  async function apply(config: object, opts: { verify?: boolean } = {}): Promise<{ changed: boolean }> {
    // The renderer gives the same bytes for the same fleet, so its own serialization is the identity; sorting keys
    // (canonicalJson) is only needed to compare with what Caddy answers, whose key order is its own.
    const body = JSON.stringify(config);
    const hash = sha256(body);
    const tagged = tag(config, hash);
    // Caddy still runs what this client loaded last (its tag answers): compare hashes, not whole configs. `verify`
    // (the daemon's full pass) compares the whole config, so an edit made beside the daemon is undone too.
    if (!opts.verify && lastHash && (hash !== lastHash || await stillApplied())) {
      // A new config is loaded straight away; the same one is left alone while Caddy still runs it.
      if (hash === lastHash) return { changed: false };
    } else {
      const running = await current();
      if (running !== null && canonicalJson(running) === canonicalJson(tagged)) {
        lastHash = hash;
        return { changed: false };
      }
    }
    const started = Date.now();
    const res = await call('POST', '/load', taggedBody(body, tagged, hash));
    // Caddy keeps running the previous config when a load fails.
    if (res.status !== 200) throw loadError(res);
    log.debug({ hash: hash.slice(0, 12), ms: Date.now() - started, previous: lastHash?.slice(0, 12) ?? null }, 'gateway config loaded');
    lastHash = hash;
    return { changed: true };
  }

  async function check(config: object): Promise<{ ok: true } | { ok: false; message: string }> {
    // Caddy runs the check servers next to the last config from now on: not what was applied any more.
    lastHash = null;
    const res = await call('POST', '/load', JSON.stringify(beside(await current(), config)));
    if (res.status === 200) return { ok: true };
    const err = loadError(res);
    if (isCaddyRejection(err)) return { ok: false, message: err.caddyMessage };
    throw err;
  }

  function loadError(res: { status: number; text: string }): FleetError {
    if (res.status >= 400 && res.status < 500) return new CaddyRejectedError(res.status, caddyMessage(res.text));
    return new FleetError('GATEWAY', `Caddy admin API at ${base} failed to load the config (${res.status}): ${caddyMessage(res.text)}`);
  }

  async function stillApplied(): Promise<boolean> {
    if (!lastHash) return false;
    const res = await call('GET', `/id/${tagId(lastHash)}`);
    return res.status === 200;
  }

  return { apply, check, current, stillApplied, lastAppliedHash: () => lastHash };
}

const tagId = (hash: string) => `fleet-config-${hash.slice(0, 24)}`;

/** The config with its tag: an `@id` on the admin object (small to fetch; a config without one is left as it is). */
function tag(config: object, hash: string): object {
  const c = config as Json;
  return c.admin && typeof c.admin === 'object' ? { ...c, admin: { ...c.admin, '@id': tagId(hash) } } : c;
}

type Json = Record<string, any>;

/**
 * The tagged config as JSON, from the untagged JSON already made for the hash: the tag spliced into the admin
 * object the renderer writes first, so a 1,000-project config is not serialized twice. Any other shape is
 * serialized anew.
 */
function taggedBody(untagged: string, tagged: object, hash: string): string {
  const id = JSON.stringify(tagId(hash));
  if (untagged.startsWith('{"admin":{}')) return `{"admin":{"@id":${id}}${untagged.slice('{"admin":{}'.length)}`;
  if (untagged.startsWith('{"admin":{"')) return `{"admin":{"@id":${id},${untagged.slice('{"admin":{'.length)}`;
  return JSON.stringify(tagged);
}

/**
 * `running` plus each HTTP server of `candidate` as `<CHECK_SERVER>_<name>`, without TLS, on port 0 of its own
 * loopback address (127.0.0.1, .2, ...: Caddy refuses two servers on one listener address, port 0 included).
 */
function beside(running: object | null, candidate: object): Json {
  const run = (running ?? {}) as Json;
  const cand = candidate as Json;
  const checked: Json = {};
  for (const [i, [name, server]] of Object.entries((cand.apps?.http?.servers ?? {}) as Json).entries()) {
    const { tls_connection_policies: _tls, ...rest } = server as Json;
    checked[`${CHECK_SERVER}_${name}`] = { ...rest, listen: [`127.0.0.${i + 1}:0`], automatic_https: { disable: true } };
  }
  const others = Object.fromEntries(Object.entries((run.apps?.http?.servers ?? {}) as Json).filter(([n]) => !n.startsWith(CHECK_SERVER)));
  return {
    ...run,
    // Never move the admin API while checking: keep the address Caddy listens on now.
    admin: run.admin ?? cand.admin,
    apps: { ...run.apps, http: { ...run.apps?.http, servers: { ...others, ...checked } } },
  };
}

interface AdminTarget {
  client: typeof http | typeof https;
  options: http.RequestOptions;
}

/**
 * The socket file of a `unix:///path` (or Caddy's `unix//path`) admin address, null for http(s). A `|0222` suffix
 * is permission bits for Caddy 2.8+ to set on the socket, not part of the path.
 */
export function adminSocketPath(admin: string): string | null {
  const rest = /^unix:?(\/.*)$/.exec(admin)?.[1];
  return rest === undefined ? null : rest.replace(/^\/+/, '/').replace(/\|[0-7]{3,4}$/, '');
}

/** Where requests go: an http(s) origin, or a unix socket. */
function adminTarget(base: string): AdminTarget {
  const socketPath = adminSocketPath(base);
  if (socketPath) {
    // Caddy's admin API on a socket accepts an empty Host header (2.6 only that); node would send `localhost`.
    return { client: http, options: { socketPath, setHost: false, headers: { Host: '' } } };
  }
  const url = new URL(base.includes('://') ? base : `http://${base}`);
  const client = url.protocol === 'https:' ? https : http;
  return { client, options: { protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || undefined } };
}

/**
 * One admin request on its own connection: Caddy restarts its admin server on every load, which closes
 * kept-alive connections under a pooled client ("other side closed"). A request per tick needs no pool.
 */
function request(target: AdminTarget, method: string, path: string, body: string | undefined, timeoutMs: number) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const headers: Record<string, string> = { ...(target.options.headers as Record<string, string> | undefined) };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      // We only POST after seeing a difference, so Caddy must not skip the load as "same config".
      headers['Cache-Control'] = 'must-revalidate';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const options = { ...target.options, path, method, headers, agent: false, timeout: timeoutMs };
    const req = target.client.request(options, (res) => {
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
