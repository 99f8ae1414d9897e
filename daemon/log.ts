// The fleet's logger: pino, JSON lines, with secret values removed at the logger so no caller has to remember.
// Three layers, because each catches what the others cannot:
//  1. pino `redact` paths: fixed, fast, and also applied to child-logger bindings;
//  2. a deep scrub of every logged object and of child bindings: any key that looks secret, at any depth, and any
//     connection URL with a password inside any string;
//  3. serializers for errors and the message string, which scrub `scheme://user:password@` out of text.
import pino, { type Logger, type DestinationStream, type LevelWithSilent } from 'pino';
import { createRequire } from 'node:module';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Where JSON lines go (default stdout). */
  destination?: DestinationStream | NodeJS.WritableStream;
  /**
   * Lines for a person at a terminal (pino-pretty: time, level, message, then one field a line) instead of JSON:
   * `fleet daemon --dev`. Production keeps JSON for log collectors. Redaction happens before either.
   */
  pretty?: boolean;
}

const CENSOR = '[Redacted]';

// Keys whose values are secrets wherever they appear (DATABASE_URL, JWT_SECRET, apiKey, secretAccessKey, ...).
const SECRET_KEY = /pass(word|wd|phrase)?$|secret|token|api[-_]?key|private[-_]?key|credential|authorization|cookie|database_url|connection_?string|dsn$/i;

/** Fixed redaction paths handed to pino (one and two levels deep; deeper keys are caught by the scrub). */
export const REDACT_PATHS: string[] = [
  ...['password', 'secret', 'token', 'DATABASE_URL', 'JWT_SECRET', 'authorization', 'cookie', 'secretAccessKey', 'sessionToken', 'webhookSecret', 'connectionString']
    .flatMap((key) => [key, `*.${key}`]),
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
  'env.DATABASE_URL',
  'env.JWT_SECRET',
  '*.env.DATABASE_URL',
  '*.env.JWT_SECRET',
  'credentials',
  '*.credentials',
];

// `scheme://user:password@`: the password runs to the last `@` before whitespace or a quote, so an unencoded
// `@` or `/` inside it still ends up redacted (over-redacting a port in `http://h:80/a@b` is the safe error).
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@'"]*:)[^\s'"]*@/gi;
// libpq key=value strings: `host=... password=secret`.
const KV_PASSWORD = /\b(password\s*=\s*)('[^']*'|"[^"]*"|[^\s]+)/gi;

/** Text with every connection-URL password and `password=` value replaced by ***. */
export function scrubText(text: string): string {
  return text.replace(URL_PASSWORD, '$1***@').replace(KV_PASSWORD, '$1***');
}

/** A connection URL with its password replaced: `postgres://u:***@h:5432/db`. */
export function redactUrl(url: string): string {
  return scrubText(url);
}

interface SerializedError {
  type: string;
  message: string;
  stack?: string;
  code?: unknown;
  project?: unknown;
  cause?: unknown;
}

/**
 * An error as a log object: type, message, stack, `code`, `project`, and its cause chain, all scrubbed. Other own
 * properties are left out on purpose: driver errors carry query details and SDK errors carry request data.
 */
export function serializeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return scrub(err);
  const e = err as Error & { code?: unknown; project?: unknown };
  const out: SerializedError = { type: e.name || e.constructor?.name || 'Error', message: scrubText(String(e.message ?? '')) };
  if (typeof e.stack === 'string') out.stack = scrubText(e.stack);
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = e.code;
  if (typeof e.project === 'string') out.project = e.project;
  if (e.cause !== undefined && depth < 4) out.cause = serializeError(e.cause, depth + 1);
  return out;
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A copy of `value` with secret-looking keys censored and URL passwords scrubbed, at any depth. */
export function scrub(value: unknown, seen: WeakSet<object> = new WeakSet(), depth = 0): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return serializeError(value);
  if (seen.has(value)) return '[Circular]';
  if (depth > 10) return '[Too deep]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => scrub(item, seen, depth + 1));
    if (!isPlainObject(value)) return value;
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = SECRET_KEY.test(key) && item !== null && item !== undefined && item !== '' ? CENSOR : scrub(item, seen, depth + 1);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const options: pino.LoggerOptions = {
    level: opts.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    serializers: {
      err: (value: unknown) => serializeError(value),
      error: (value: unknown) => serializeError(value),
      msg: (value: unknown) => (typeof value === 'string' ? scrubText(value) : scrub(value)),
    },
    formatters: {
      log: (obj) => scrub(obj) as Record<string, unknown>,
    },
  };
  const target = (opts.destination ?? process.stdout) as NodeJS.WritableStream & { isTTY?: boolean };
  // In-process and synchronous (no worker thread): a line is on the terminal before the next one is written.
  const destination = opts.pretty
    ? prettyStream()({ destination: target, sync: true, colorize: target.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
    : opts.destination;
  const root = destination ? pino(options, destination as DestinationStream) : pino(options);
  // pino runs no formatter over child bindings, so scrub them on the way in. Children are created with
  // Object.create(parent), so every descendant inherits this override.
  const plainChild = root.child;
  root.child = function child(this: Logger, bindings, childOptions) {
    return plainChild.call(this, scrub(bindings) as pino.Bindings, childOptions);
  } as Logger['child'];
  return root;
}

/** pino-pretty, loaded only by a logger that prints for a person (`--dev`): production and the CLI never need it. */
function prettyStream(): typeof import('pino-pretty') {
  return createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
}
