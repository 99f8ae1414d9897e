// Which server, and which host, a project's database URL names: fleet.yaml's per-server `instanceHost` (the name a
// docker instance reaches that server by) is what DATABASE_URL carries, and a CLI resolves a project's server the
// way the daemon does (scripts/project-server.ts), asking for main's admin URL only when the project lives there.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkFleetConfig } from '../daemon/manifest/fleet-config.ts';
import { createLogger } from '../daemon/log.ts';
import { createServerDirectory } from '../daemon/postgres/servers.ts';
import { databaseNames, instanceDatabaseUrl } from '../daemon/provision/database.ts';
import { createSecretStore } from '../daemon/secrets/index.ts';
import type { ProjectRecord } from '../daemon/registry/registry.ts';
import { projectServer } from '../scripts/project-server.ts';

const FLEET = `branch: main
driver: docker
docker: { network: atomo }
postgres:
  admin: /atomo/fleet/pg-admin
  instanceHost: postgres
  servers:
    hot: /atomo/fleet/pg-hot
    cold: { admin: /atomo/fleet/pg-cold, instanceHost: pg-cold }
`;
const fleet = checkFleetConfig(FLEET).config!;
const dir = mkdtempSync(join(tmpdir(), 'fleet-servers-'));
const secrets = createSecretStore(fleet.secretStore, { stateDir: dir, log: createLogger({ level: 'silent' }) });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MAIN = 'postgres://postgres:main-pw@127.0.0.1:5432/postgres';
const notAsked = async (): Promise<string> => { throw new Error('main was asked for'); };

describe('per-server instanceHost (driver: docker)', () => {
  it('DATABASE_URL names the server\'s instanceHost, with the admin URL\'s port; none given: the admin URL\'s host', async () => {
    await secrets.put('/atomo/fleet/pg-hot', 'postgres://admin:hot-pw@10.0.0.7:6543/postgres');
    await secrets.put('/atomo/fleet/pg-cold', 'postgres://admin:cold-pw@10.0.0.9:7654/postgres');
    const servers = createServerDirectory({ adminUrl: MAIN, secrets, fleet });
    const db = databaseNames('notes');
    const url = async (name: string) => {
      const s = await servers.get(name);
      return new URL(instanceDatabaseUrl(s.adminUrl, db, 'role-pw', s.instanceHost));
    };
    expect(await url('cold')).toMatchObject({ hostname: 'pg-cold', port: '7654', username: 'atomo_notes', password: 'role-pw', pathname: '/atomo_notes' });
    expect(await url('main')).toMatchObject({ hostname: 'postgres', port: '5432' });
    expect(await url('hot')).toMatchObject({ hostname: '10.0.0.7', port: '6543' });
  });

  it('main\'s admin URL is asked for only when main is asked for', async () => {
    const servers = createServerDirectory({ adminUrl: notAsked, secrets, fleet });
    expect((await servers.get('cold')).adminUrl).toMatch(/^postgres:\/\/admin:cold-pw@10\.0\.0\.9/);
    await expect(servers.get('main')).rejects.toThrow('main was asked for');
  });
});

describe('projectServer: the CLI\'s admin URL for a project', () => {
  const registry = (server?: string) => ({ get: async (id: string) => (id === 'notes' ? { id, databaseServer: server } as ProjectRecord : null) });
  const source = { project: 'notes', fleet, secrets: () => secrets };

  it('a moved project: its server from fleet.yaml, never main (--postgres is main\'s)', async () => {
    await secrets.put('/atomo/fleet/pg-cold', 'postgres://admin:cold-pw@10.0.0.9:7654/postgres');
    expect(await projectServer({ ...source, registry: registry('cold'), main: notAsked })).toEqual({ name: 'cold', adminUrl: 'postgres://admin:cold-pw@10.0.0.9:7654/postgres' });
  });

  it('a project on main, or one the registry does not know: main', async () => {
    expect(await projectServer({ ...source, registry: registry('main'), main: async () => MAIN })).toEqual({ name: 'main', adminUrl: MAIN });
    expect(await projectServer({ ...source, project: 'other', registry: registry('cold'), main: async () => MAIN })).toEqual({ name: 'main', adminUrl: MAIN });
  });

  it('a server fleet.yaml no longer names, or no fleet.yaml: an error saying what to do', async () => {
    await expect(projectServer({ ...source, registry: registry('gone'), main: notAsked })).rejects.toThrow('fleet.yaml names no Postgres server "gone" (it names: main, hot, cold); add it under postgres.servers');
    await expect(projectServer({ ...source, fleet: null, registry: registry('cold'), main: notAsked })).rejects.toThrow(/lives on Postgres server cold, which only fleet.yaml names: run this in the fleet repository/);
  });
});
