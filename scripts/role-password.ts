// The Postgres side of `fleet secrets rotate <id> DATABASE_URL`: where the admin URL is, and a new password for a
// project's role, only for a role the fleet marked as that project's (nobody else's role is touched).
import { existsSync, readFileSync } from 'node:fs';
import pg from 'pg';
import type { FleetEnv } from '../daemon/config/env.ts';
import { FleetError } from '../daemon/core/errors.ts';
import type { FleetConfig, SecretStore } from '../daemon/core/types.ts';
import { superuserPasswordFile } from '../daemon/postgres/resolve.ts';
import { databaseNames, roleMarker } from '../daemon/provision/database.ts';

/**
 * The default server's (main) admin URL: --postgres, else FLEET_POSTGRES_URL, else the embedded cluster of a laptop
 * run, else fleet.yaml's reference. A project on another server: scripts/project-server.ts.
 */
export async function adminUrlFor(o: { flag?: string; env: FleetEnv; fleet: FleetConfig; secrets: SecretStore; stateDir: string }): Promise<string> {
  if (o.flag) return o.flag;
  if (o.env.postgresUrl) return o.env.postgresUrl;
  if (o.fleet.postgres.admin !== 'embedded') return o.secrets.get(o.fleet.postgres.admin);
  const file = superuserPasswordFile(o.stateDir);
  if (!existsSync(file)) throw new FleetError('USAGE', `no ${file}: start the daemon once (npm start), or pass --postgres URL`);
  const u = new URL('postgres://postgres@127.0.0.1/postgres');
  u.password = readFileSync(file, 'utf8').trim();
  u.port = String(o.env.pgPort);
  return u.toString();
}

/** `ALTER ROLE ... PASSWORD` for the project's own, marked role; anything else is refused untouched. */
export async function setRolePassword(adminUrl: string, role: string, project: string, password: string): Promise<void> {
  if (role !== databaseNames(project).role) throw new FleetError('PROVISION', `refusing to change role ${role}: it is not the role of project ${project}`, { project });
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err: any) {
    throw new FleetError('POSTGRES_UNREACHABLE', `the project Postgres server is unreachable: ${err.code ?? 'connection failed'}; pass --postgres URL or start it`, { project, cause: err });
  }
  try {
    const { rows } = await c.query(`SELECT shobj_description(oid, 'pg_authid') AS marker FROM pg_roles WHERE rolname = $1`, [role]);
    if (rows[0]?.marker !== roleMarker(project)) {
      throw new FleetError('PROVISION', `role ${role} ${rows.length ? 'was not created by atomo-fleet (no ownership marker)' : 'does not exist'}: nothing was changed`, { project });
    }
    await c.query(`ALTER ROLE ${c.escapeIdentifier(role)} PASSWORD ${c.escapeLiteral(password)}`);
  } catch (err: any) {
    if (err instanceof FleetError) throw err;
    // Postgres names objects in its messages, never the password literal.
    throw new FleetError('PROVISION', `could not set the password of role ${role}: ${err.message}`, { project, cause: err });
  } finally {
    await c.end().catch(() => {});
  }
}
