// Pure renderers for what an instance is started with: its environment (the atomo-server contract) and the hash
// of everything whose change needs a restart. Secret values enter only the environment, never the hash input.
import { createHash } from 'node:crypto';
import type { DriverLayout, Manifest } from './types.ts';
import { canonicalJson } from './canonical.ts';

/** Keys the fleet owns: a manifest cannot override them (validation also rejects secrets in env). */
export const FLEET_OWNED_ENV = ['DATABASE_URL', 'JWT_SECRET', 'ATOMO_SCHEMA_PATH', 'HOST', 'PORT', 'ATOMO_PROJECT_ID'];

export interface EnvInput {
  manifest: Manifest;
  /** Resolved secret values by env name: DATABASE_URL, JWT_SECRET and the manifest's `secrets`. */
  secrets: Record<string, string>;
  schemaPath: string;
  host: string;
  port: number;
}

export function renderInstanceEnv(input: EnvInput): Record<string, string> {
  const { manifest } = input;
  const env: Record<string, string> = {
    // Production unless the manifest says otherwise: atomo then refuses to boot without JWT_SECRET.
    ATOMO_ENV: 'production',
    // The schema watcher exits the instance (code 0) when the daemon rewrites schema.ts; the daemon starts it again.
    ATOMO_SCHEMA_WATCH: 'true',
    LOG_FORMAT: 'json',
    // tenancy.rls turns on atomo's row-level security (policy per model table, tenant set per transaction).
    ...(manifest.tenancy?.rls ? { ATOMO_ENABLE_RLS: 'true' } : {}),
    ...manifest.env,
  };
  for (const [name, value] of Object.entries(input.secrets)) env[name] = value;
  env.ATOMO_SCHEMA_PATH = input.schemaPath;
  env.HOST = input.host;
  env.PORT = String(input.port);
  env.ATOMO_PROJECT_ID = manifest.id;
  return env;
}

export interface HashInput {
  manifest: Manifest;
  schemaDigest: string;
  port: number;
  secretsVersion: number;
  driver: string;
  /** Operator restart requests so far; 0 (or absent) leaves the hash as it was before restarts could be asked for. */
  restartGeneration?: number;
}

/**
 * Changes to runtime, env, secret references (or a rotation), resources, placement, port or schema content restart
 * the instance; display name, hostname, aliases and edge policy only change the gateway, so they are left out.
 */
export function instanceSpecHash(h: HashInput): string {
  const m = h.manifest;
  const input = JSON.stringify({
    // Keys sorted: a manifest read back from jsonb orders them its own way, and that must not restart anything.
    runtime: sortedKeys(m.runtime ?? {}), env: sorted(m.env), secrets: sorted(m.secrets), resources: instanceResources(m.resources), rls: m.tenancy?.rls ?? false,
    schema: h.schemaDigest, port: h.port, secretsVersion: h.secretsVersion, driver: h.driver,
    ...(h.restartGeneration ? { restartGeneration: h.restartGeneration } : {}),
    // Where a swarm task may run: a change redeploys it. Other drivers place nothing, and without a placement the
    // hash is what it was before placement existed.
    ...(m.placement && h.driver === 'swarm' ? { placement: { constraints: [...(m.placement.constraints ?? [])].sort(), preferences: m.placement.preferences ?? [] } } : {}),
  });
  return createHash('sha256').update(input).digest('hex').slice(0, 16);
}

/**
 * The resources the instance itself gets, in a fixed key order. `connections` is left out: it is the database
 * role's limit, applied by provisioning, and changing it must not restart the instance.
 */
function instanceResources(r: Manifest['resources'] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r?.cpus !== undefined) out.cpus = r.cpus;
  if (r?.memory !== undefined) out.memory = r.memory;
  return out;
}

function sortedKeys(o: object): Record<string, unknown> {
  return JSON.parse(canonicalJson(o)) as Record<string, unknown>;
}

function sorted(o: Record<string, string>): [string, string][] {
  return Object.entries(o ?? {}).sort(([a], [b]) => a.localeCompare(b));
}

/** The port an instance listens on: the project's own host port where instances share the host, else the manifest's. */
export function instancePort(layout: DriverLayout, hostPort: number | null | undefined, m: Manifest): number {
  return layout.hostPorts ? hostPort ?? 0 : m.runtime.port ?? 3000;
}
