// The admin URLs of fleet.yaml's Postgres servers, resolved from the secret store when a step needs one. The default
// server (main) is the one the daemon started with (its registry lives there too); the others are references in
// fleet.yaml, read again whenever a new fleet.yaml is read, so adding a server needs no daemon restart.
import { FleetError } from '../core/errors.ts';
import { DEFAULT_DATABASE_SERVER, databaseServers, type DatabaseServer } from '../core/servers.ts';
import type { FleetConfig, SecretStore } from '../core/types.ts';

export interface ResolvedServer {
  name: string;
  adminUrl: string;
  instanceHost?: string;
}

export interface ServerDirectory {
  /** The server `name` with its admin URL; an unknown name or a missing secret is a FleetError saying what to fix. */
  get(name: string): Promise<ResolvedServer>;
  /** The servers a fleet.yaml names (each valid fleet.yaml read replaces them). */
  configure(fleet: Pick<FleetConfig, 'postgres'>): void;
}

/**
 * `adminUrl` is the default server's: given, or found only when a step asks for main (a CLI resolves it from
 * --postgres, the environment, the embedded cluster or postgres.admin, and a project on another server needs none).
 */
export function createServerDirectory(o: { adminUrl: string | (() => Promise<string>); secrets: Pick<SecretStore, 'get'>; fleet?: Pick<FleetConfig, 'postgres'> | null }): ServerDirectory {
  let servers: Record<string, DatabaseServer> = databaseServers(o.fleet ?? null);
  return {
    configure(fleet) {
      servers = databaseServers(fleet);
    },
    async get(name) {
      const s = servers[name];
      if (!s) {
        throw new FleetError('PROVISION', `fleet.yaml names no Postgres server "${name}" (it names: ${Object.keys(servers).join(', ')}); add it under postgres.servers`);
      }
      const instanceHost = s.instanceHost;
      // The default server is the daemon's own (started embedded, or given at start): never looked up again.
      if (name === DEFAULT_DATABASE_SERVER) {
        return { name, adminUrl: typeof o.adminUrl === 'string' ? o.adminUrl : await o.adminUrl(), ...(instanceHost ? { instanceHost } : {}) };
      }
      return { name, adminUrl: await o.secrets.get(s.admin), ...(instanceHost ? { instanceHost } : {}) };
    },
  };
}
