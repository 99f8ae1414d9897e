// The admin URL a CLI command uses for one project's database: the server the registry records for it
// (`database_server`), resolved from fleet.yaml as the daemon resolves it (daemon/postgres/servers.ts). Only the
// default server, main, comes from what the CLI always used (--postgres, FLEET_POSTGRES_URL, the embedded cluster,
// postgres.admin); another one is fleet.yaml's secret reference, so a moved project needs no extra flag.
import { FleetError } from '../daemon/core/errors.ts';
import { DEFAULT_DATABASE_SERVER } from '../daemon/core/servers.ts';
import type { FleetConfig, SecretStore } from '../daemon/core/types.ts';
import { createServerDirectory } from '../daemon/postgres/servers.ts';
import type { ProjectRecord } from '../daemon/registry/registry.ts';

export interface ProjectServerSource {
  registry: { get(id: string): Promise<ProjectRecord | null> };
  project: string;
  fleet: Pick<FleetConfig, 'postgres'> | null;
  /** The secret store holding fleet.yaml's references (asked only for a server other than main). */
  secrets: () => Pick<SecretStore, 'get'>;
  /** The default server's admin URL (asked only for a project on main). */
  main: () => Promise<string>;
}

/** The server a project's database lives on, with its admin URL; a project the registry does not know is on main. */
export async function projectServer(o: ProjectServerSource): Promise<{ name: string; adminUrl: string }> {
  const name = (await o.registry.get(o.project))?.databaseServer ?? DEFAULT_DATABASE_SERVER;
  if (name === DEFAULT_DATABASE_SERVER) return { name, adminUrl: await o.main() };
  if (!o.fleet) {
    throw new FleetError('USAGE', `the database of ${o.project} lives on Postgres server ${name}, which only fleet.yaml names: run this in the fleet repository (--repo DIR)`, { project: o.project });
  }
  const s = await createServerDirectory({ adminUrl: o.main, secrets: o.secrets(), fleet: o.fleet }).get(name);
  return { name, adminUrl: s.adminUrl };
}
