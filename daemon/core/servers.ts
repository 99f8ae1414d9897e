// Named Postgres servers (fleet.yaml `postgres.servers`) and which one a project's database lives on. Pure.
//
// Shape, chosen to keep every existing fleet.yaml working unchanged: `postgres.admin` (default `embedded`) and
// `postgres.instanceHost` are the default server, named `main`. `postgres.servers` names more, each a secret
// reference to its admin URL or `{ admin, instanceHost }`. `servers.main` may repeat the default server (then it is
// postgres.admin); it may not contradict it.
import type { FleetConfig, Manifest } from './types.ts';

/** The server a project's database lives on when its manifest names none (and every database before servers). */
export const DEFAULT_DATABASE_SERVER = 'main';

export interface DatabaseServer {
  /** A secret reference to the admin URL, or `embedded` (the default server only). */
  admin: string;
  /** Host instances use to reach this server, when it differs from the admin URL's. */
  instanceHost?: string;
}

/** Every server fleet.yaml names, the default one first. */
export function databaseServers(fleet: Pick<FleetConfig, 'postgres'> | null): Record<string, DatabaseServer> {
  const pg = fleet?.postgres ?? { admin: 'embedded' };
  const main: DatabaseServer = { admin: pg.admin, ...(pg.instanceHost ? { instanceHost: pg.instanceHost } : {}) };
  const out: Record<string, DatabaseServer> = { [DEFAULT_DATABASE_SERVER]: main };
  for (const [name, s] of Object.entries(pg.servers ?? {})) {
    if (name === DEFAULT_DATABASE_SERVER) continue;
    out[name] = typeof s === 'string' ? { admin: s } : { admin: s.admin, ...(s.instanceHost ? { instanceHost: s.instanceHost } : {}) };
  }
  return out;
}

/** The server a manifest asks its database to live on. */
export function databaseServerOf(m: Pick<Manifest, 'database'>): string {
  return m.database?.server ?? DEFAULT_DATABASE_SERVER;
}
