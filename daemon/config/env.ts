// The daemon's and the CLI's own environment, read once at start into a frozen, typed FleetEnv. This is the only
// file that reads FLEET_* (and LOG_LEVEL); a malformed value fails here, naming the variable and what it takes,
// before anything starts. CLI flags still win: commands use `flag ?? env.x`.
import { FleetError } from '../core/errors.ts';
import { branchProblem } from '../manifest/fleet-config.ts';
import type { FleetConfig } from '../core/types.ts';
import { DEFAULT_HTTP_PORT, DEFAULT_INTERVAL_SECONDS, DEFAULT_PG_PORT } from './defaults.ts';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
type SecretStoreType = FleetConfig['secretStore']['type'];
const SECRET_STORES: readonly SecretStoreType[] = ['local', 'ssm'];

export interface FleetEnv {
  /** FLEET_REPO_URL: clone this repository instead of following the working copy (= --remote). */
  readonly repoUrl?: string;
  /** FLEET_REGISTRY_URL (= --registry). */
  readonly registryUrl?: string;
  /** FLEET_POSTGRES_URL: the admin URL (= --postgres). */
  readonly postgresUrl?: string;
  /** FLEET_STATE_DIR (= --state-dir); unset: `<repo>/.fleet`. */
  readonly stateDir?: string;
  /** FLEET_HTTP_PORT (= --http-port); 0 picks a free port. */
  readonly httpPort: number;
  /** FLEET_HTTP_HOST; unset: loopback. */
  readonly httpHost?: string;
  /** FLEET_INTERVAL (= --interval): seconds between passes. */
  readonly interval: number;
  /** FLEET_PORT_BASE: first process-driver instance port; unset: the daemon's default. */
  readonly portBase?: number;
  /** FLEET_CONCURRENCY: projects one pass converges side by side (default 8). */
  readonly concurrency?: number;
  /** FLEET_HEALTH_INTERVAL: seconds between health probe rounds (default 10). */
  readonly healthInterval?: number;
  /** FLEET_PG_PORT: the embedded Postgres. */
  readonly pgPort: number;
  /** LOG_LEVEL. */
  readonly logLevel: LogLevel;
  /** FLEET_SECRET_STORE, FLEET_SECRET_PREFIX, FLEET_BRANCH, FLEET_GIT_TOKEN_SECRET: a remote clone before fleet.yaml is read. */
  readonly secretStore: SecretStoreType;
  readonly secretPrefix: string;
  readonly branch: string;
  readonly gitTokenSecret?: string;
}

type Source = Readonly<Record<string, string | undefined>>;

/** Every FleetEnv this module made: code handed one (or a raw environment) can tell them apart. */
const made = new WeakSet<FleetEnv>();

export function readEnv(env: Source = process.env): FleetEnv {
  // An empty value (compose's `${X:-}`) counts as unset.
  const get = (name: string): string | undefined => (env[name] === '' ? undefined : env[name]);
  const num = (name: string, rule: NumberRule, fallback: number) => {
    const raw = get(name);
    return raw === undefined ? fallback : parseNumber(name, raw, rule);
  };
  const portBase = get('FLEET_PORT_BASE');
  const optional = (name: string, rule: NumberRule) => {
    const raw = get(name);
    return raw === undefined ? undefined : parseNumber(name, raw, rule);
  };
  const fleetEnv: FleetEnv = {
    repoUrl: get('FLEET_REPO_URL'),
    registryUrl: get('FLEET_REGISTRY_URL'),
    postgresUrl: get('FLEET_POSTGRES_URL'),
    stateDir: get('FLEET_STATE_DIR'),
    httpPort: num('FLEET_HTTP_PORT', 'listenPort', DEFAULT_HTTP_PORT),
    httpHost: get('FLEET_HTTP_HOST'),
    interval: num('FLEET_INTERVAL', 'seconds', DEFAULT_INTERVAL_SECONDS),
    portBase: portBase === undefined ? undefined : parseNumber('FLEET_PORT_BASE', portBase, 'port'),
    concurrency: optional('FLEET_CONCURRENCY', 'concurrency'),
    healthInterval: optional('FLEET_HEALTH_INTERVAL', 'seconds'),
    pgPort: num('FLEET_PG_PORT', 'port', DEFAULT_PG_PORT),
    logLevel: oneOf('LOG_LEVEL', get('LOG_LEVEL'), LOG_LEVELS, 'info'),
    secretStore: oneOf('FLEET_SECRET_STORE', get('FLEET_SECRET_STORE'), SECRET_STORES, 'ssm'),
    secretPrefix: secretPrefix(get('FLEET_SECRET_PREFIX')),
    branch: branch(get('FLEET_BRANCH')),
    gitTokenSecret: get('FLEET_GIT_TOKEN_SECRET'),
  };
  made.add(fleetEnv);
  return Object.freeze(fleetEnv);
}

/** A FleetEnv as is; a raw environment (e.g. a test's) read through readEnv. */
export function fleetEnvOf(env: FleetEnv | Source): FleetEnv {
  return made.has(env as FleetEnv) ? (env as FleetEnv) : readEnv(env as Source);
}

/** FLEET_DEBUG: show the cause chain of an error. Apart from readEnv, so a bad environment can still be debugged. */
export function debugEnabled(env: Source = process.env): boolean {
  return !!env.FLEET_DEBUG;
}

const NUMBER_RULES = {
  listenPort: { what: 'a port number (0-65535; 0 picks a free one)', integer: true, min: 0, max: 65535 },
  port: { what: 'a port number (1-65535)', integer: true, min: 1, max: 65535 },
  seconds: { what: 'a number of seconds above 0, such as 5 or 0.5', integer: false, min: Number.MIN_VALUE, max: Number.MAX_VALUE },
  concurrency: { what: 'a whole number from 1 to 64', integer: true, min: 1, max: 64 },
} as const;
export type NumberRule = keyof typeof NUMBER_RULES;

/** A number from an environment variable or a flag, named in the error: `FLEET_HTTP_PORT=abc: expected ...`. */
export function parseNumber(name: string, raw: string, rule: NumberRule): number {
  const r = NUMBER_RULES[rule];
  const n = Number(raw);
  const shaped = r.integer ? /^\d+$/.test(raw) : /^\d+(\.\d+)?$/.test(raw);
  if (!shaped || !Number.isFinite(n) || n < r.min || n > r.max) throw usage(name, raw, r.what);
  return n;
}

function oneOf<T extends string>(name: string, raw: string | undefined, allowed: readonly T[], fallback: T): T {
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    const list = allowed.length === 2 ? allowed.join(' or ') : allowed.join(', ');
    throw usage(name, raw, list);
  }
  return raw as T;
}

function secretPrefix(raw: string | undefined): string {
  if (raw === undefined) return '/atomo';
  // The pattern of fleet.yaml's secretStore.prefix.
  if (!/^(\/[A-Za-z0-9_.-]+)+$/.test(raw)) throw usage('FLEET_SECRET_PREFIX', raw, 'an absolute parameter path such as /atomo');
  return raw;
}

function branch(raw: string | undefined): string {
  if (raw === undefined) return 'main';
  const problem = branchProblem(raw);
  if (problem) throw usage('FLEET_BRANCH', raw, `a branch name git accepts (${problem})`);
  return raw;
}

function usage(name: string, raw: string, expected: string): FleetError {
  const shown = /^[\x21-\x7e]*$/.test(raw) ? raw : JSON.stringify(raw);
  const next = name.startsWith('-') ? '' : '; fix or unset it';
  return new FleetError('USAGE', `${name}=${shown}: expected ${expected}${next}`);
}
