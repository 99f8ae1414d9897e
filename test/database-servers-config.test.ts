// fleet.yaml `postgres.servers` (named Postgres servers) and a manifest's `database: { server, dropOld }`: validated
// at the edge, so a project can only name a server fleet.yaml defines, and an old fleet.yaml keeps working unchanged.
import { describe, expect, it } from 'vitest';
import { checkFleetConfig } from '../daemon/manifest/fleet-config.ts';
import { formatIssue } from '../daemon/manifest/parse.ts';
import { checkProject } from '../daemon/manifest/project.ts';
import { combineFleet } from '../daemon/manifest/rules.ts';
import { databaseServers } from '../daemon/core/servers.ts';

const check = (yaml: string) => {
  const r = checkFleetConfig(`branch: main\n${yaml}`);
  return { config: r.config, issues: r.issues.map(formatIssue) };
};

describe('fleet.yaml postgres.servers', () => {
  it('an old fleet.yaml with postgres.admin only: one server, main, with that admin and instanceHost', () => {
    const r = check('postgres:\n  admin: /atomo/fleet/pg-admin\n  instanceHost: db\n');
    expect(r.issues).toEqual([]);
    expect(r.config!.postgres.admin).toBe('/atomo/fleet/pg-admin');
    expect(databaseServers(r.config!)).toEqual({ main: { admin: '/atomo/fleet/pg-admin', instanceHost: 'db' } });
    expect(databaseServers(check('').config!)).toEqual({ main: { admin: 'embedded' } });
  });

  it('names servers as references or { admin, instanceHost }; postgres.admin stays the default server main', () => {
    const r = check('postgres:\n  admin: embedded\n  servers:\n    hot: /atomo/fleet/pg-hot\n    cold: { admin: /atomo/fleet/pg-cold, instanceHost: cold-db }\n');
    expect(r.issues).toEqual([]);
    expect(databaseServers(r.config!)).toEqual({
      main: { admin: 'embedded' }, hot: { admin: '/atomo/fleet/pg-hot' }, cold: { admin: '/atomo/fleet/pg-cold', instanceHost: 'cold-db' },
    });
  });

  it('servers.main may say what postgres.admin says (the issue text shape); it is then the default server', () => {
    const r = check('postgres:\n  servers: { main: /atomo/fleet/pg-main, hot: /atomo/fleet/pg-hot }\n');
    expect(r.issues).toEqual([]);
    expect(r.config!.postgres.admin).toBe('/atomo/fleet/pg-main');
    expect(Object.keys(databaseServers(r.config!))).toEqual(['main', 'hot']);
  });

  it.each([
    ['main twice, differently', 'postgres:\n  admin: /atomo/fleet/a\n  servers: { main: /atomo/fleet/b }\n', /\/postgres\/servers\/main: says another admin than postgres\.admin/],
    ['a plaintext URL', 'postgres:\n  servers: { hot: "postgres://u:p@h/db" }\n', /\/postgres\/servers\/hot: must be a secret reference/],
    ['embedded for another server', 'postgres:\n  servers: { hot: embedded }\n', /\/postgres\/servers\/hot: only the default server \(main\) can be the embedded Postgres/],
    ['a bad server name', 'postgres:\n  servers: { "Hot Box": /atomo/fleet/x }\n', /\/postgres\/servers\/Hot Box: invalid key/],
    ['an unknown key', 'postgres:\n  servers: { hot: { admin: /atomo/fleet/x, port: 5 } }\n', /\/postgres\/servers\/hot\/port: unknown key "port"/],
  ])('refuses %s', (_name, yaml, message) => {
    const r = check(yaml);
    expect(r.config).toBeNull();
    expect(r.issues.join('\n')).toMatch(message);
  });
});

const SCHEMA = 'export interface Widget { id: string; name: string; }\n';
const project = (yaml: string) => checkProject('acme', { readFile: async (rel: string) => (rel === 'project.yaml' ? `id: acme\nhostname: acme.localhost\n${yaml}` : SCHEMA) });

describe('manifest database: { server, dropOld }', () => {
  const fleet = check('postgres:\n  servers: { hot: /atomo/fleet/pg-hot }\n').config!;

  it('accepts a server fleet.yaml names, and main without any servers', async () => {
    const d = combineFleet('c0ffee', [await project('database: { server: hot, dropOld: true }\n')], fleet);
    expect(d.invalid).toEqual([]);
    expect(d.projects[0].manifest.database).toEqual({ server: 'hot', dropOld: true });
    expect(combineFleet('c0ffee', [await project('database: { server: main }\n')], null).invalid).toEqual([]);
  });

  it('refuses a server fleet.yaml does not name, listing the ones it does', async () => {
    const d = combineFleet('c0ffee', [await project('database: { server: cold }\n')], fleet);
    expect(d.invalid.flatMap((p) => p.errors).map(formatIssue)).toEqual([
      'projects/acme/project.yaml:3:21: /database/server: fleet.yaml names no Postgres server "cold"; the servers are: main, hot (add it under postgres.servers in fleet.yaml)',
    ]);
    // Without a valid fleet.yaml only main exists: nothing can point a project anywhere else.
    expect(combineFleet('c0ffee', [await project('database: { server: hot }\n')], null).invalid).toHaveLength(1);
  });

  it('refuses unknown keys and a dropOld that is not a boolean', async () => {
    const c = await project('database: { server: hot, drop: true, dropOld: "yes" }\n');
    expect(c.issues.map(formatIssue).join('\n')).toMatch(/\/database\/drop: unknown key[\s\S]*\/database\/dropOld: must be boolean/);
  });
});
