// Where the registry and the project databases live: a URL given at start, a reference in the secret store
// (fleet.yaml postgres.admin), or the embedded Postgres of a laptop run (data under <state>/pg, git-ignored).
import pg from 'pg';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { FleetError } from '../errors.ts';
import type { SecretStore, FleetConfig } from '../types.ts';
import { startEmbedded } from './embedded.ts';

export interface Databases {
  registryUrl: string;
  adminUrl: string;
}

const REGISTRY_DB = 'atomo_fleet';
const EMBEDDED_PORT = 54329;

export async function resolveDatabases(o: {
  fleet: FleetConfig; secrets: SecretStore; stateDir: string; log: Logger; registry?: string; admin?: string;
}): Promise<Databases> {
  let adminUrl = o.admin;
  if (!adminUrl && o.fleet.postgres.admin === 'embedded') {
    const port = embeddedPort();
    o.log.info({ port, dataDir: join(o.stateDir, 'pg') }, 'starting embedded Postgres');
    // Never stopped by the daemon: instances outlive it and use this Postgres; the next start adopts it.
    adminUrl = (await startEmbedded({ dataDir: join(o.stateDir, 'pg'), port })).url;
  } else if (!adminUrl) {
    adminUrl = await o.secrets.get(o.fleet.postgres.admin);
  }
  const registryUrl = o.registry ?? withDatabase(adminUrl, REGISTRY_DB);
  if (!o.registry) await ensureRegistryDatabase(adminUrl, o.log);
  return { registryUrl, adminUrl };
}

/** The registry URL a laptop run uses, without starting anything (for `fleet status`). */
export function embeddedRegistryUrl(): string {
  return withDatabase(`postgres://postgres:postgres@127.0.0.1:${embeddedPort()}/postgres`, REGISTRY_DB);
}

function embeddedPort(): number {
  return Number(process.env.FLEET_PG_PORT ?? EMBEDDED_PORT);
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/** Create the registry database when missing; an unreachable server is left for the daemon loop to wait on. */
async function ensureRegistryDatabase(adminUrl: string, log: Logger): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
    const exists = (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [REGISTRY_DB])).rowCount;
    if (!exists) await c.query(`CREATE DATABASE ${REGISTRY_DB}`);
  } catch (err: any) {
    if (err.code === '42P04') return;
    log.warn({ err: { code: err.code, message: err.message } }, 'Postgres not reachable yet; the daemon waits and retries');
    if (err.code && !['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', '57P03'].includes(err.code)) {
      throw new FleetError('POSTGRES_UNREACHABLE', `cannot prepare the registry database: ${err.message}`, { cause: err });
    }
  } finally {
    await c.end().catch(() => {});
  }
}
