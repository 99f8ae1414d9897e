// Provision what a project needs before its instance can start: secrets, database and role, the schema file.
// Each step checks before it acts, so running it again (after a crash, every pass) creates nothing twice.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { privateDir } from '../files.ts';
import { createHash } from 'node:crypto';
import type { FleetSecretStore } from '../secrets/refs.ts';
import { cleanPrefix, secretRef, secretRefAllowed, resolveRef } from '../secrets/refs.ts';
import { FleetError } from '../core/errors.ts';
import { generatePassword, generateSecret } from '../secrets/generate.ts';
import type { Manifest } from '../core/types.ts';
import { databaseNames, ensureDatabase, instanceDatabaseUrl } from './database.ts';

export interface ProvisionContext {
  secrets: FleetSecretStore;
  secretPrefix: string;
  /** fleet.yaml `sharedSecrets`: references outside a project's own path that every project may read. */
  sharedSecrets?: readonly string[];
  adminUrl: string;
  /** Host instances use to reach Postgres, when it differs from the admin URL's (docker network name). */
  instanceDbHost?: string;
  stateDir: string;
}

/**
 * Secret references of a project by env name: the manifest's, each checked to lie under the project's own path
 * or in fleet.yaml's `sharedSecrets` (validation refuses the others first; this guards rows and manifests that
 * never went through it), then the generated DATABASE_URL and JWT_SECRET, which nothing overrides.
 */
export function secretRefsOf(ctx: Pick<ProvisionContext, 'secretPrefix' | 'sharedSecrets'>, m: Pick<Manifest, 'id' | 'secrets'>): Record<string, string> {
  const refs: Record<string, string> = {};
  for (const [name, ref] of Object.entries(m.secrets ?? {})) {
    const resolved = resolveRef(ctx.secretPrefix, m.id, ref);
    if (!secretRefAllowed(ctx.secretPrefix, [...(ctx.sharedSecrets ?? [])], m.id, resolved)) {
      throw new FleetError('SECRET_STORE', `secret reference ${resolved} (${name}) is outside ${cleanPrefix(ctx.secretPrefix)}/${m.id}/ ` +
        `and not shared in fleet.yaml sharedSecrets: project ${m.id} may read only its own secrets`, { project: m.id });
    }
    refs[name] = resolved;
  }
  refs.DATABASE_URL = secretRef(ctx.secretPrefix, m.id, 'DATABASE_URL');
  refs.JWT_SECRET = secretRef(ctx.secretPrefix, m.id, 'JWT_SECRET');
  return refs;
}

/**
 * Generate DATABASE_URL and JWT_SECRET when missing, then make the role and database match them.
 * `connectionLimit` (manifest `resources.connections`) caps the role's connections (default 20). `server`: the
 * fleet.yaml Postgres server the database lives on, when it is not the default one (ctx.adminUrl).
 */
export async function provisionProject(
  ctx: ProvisionContext, id: string, opts: { connectionLimit?: number; server?: { adminUrl: string; instanceHost?: string } } = {},
): Promise<{ databaseCreated: boolean }> {
  const db = databaseNames(id);
  const adminUrl = opts.server?.adminUrl ?? ctx.adminUrl;
  const instanceHost = opts.server ? opts.server.instanceHost : ctx.instanceDbHost;
  const urlRef = secretRef(ctx.secretPrefix, id, 'DATABASE_URL');
  // The secret is written before the role exists: a crash in between leaves a password the next pass applies.
  if (!(await ctx.secrets.has(urlRef))) {
    await ctx.secrets.put(urlRef, instanceDatabaseUrl(adminUrl, db, generatePassword(), instanceHost));
  }
  const jwtRef = secretRef(ctx.secretPrefix, id, 'JWT_SECRET');
  if (!(await ctx.secrets.has(jwtRef))) await ctx.secrets.put(jwtRef, generateSecret(48));
  const password = decodeURIComponent(new URL(await ctx.secrets.get(urlRef)).password);
  const { created } = await ensureDatabase(adminUrl, db, password, { connectionLimit: opts.connectionLimit });
  return { databaseCreated: created };
}

export function schemaFilePath(stateDir: string, id: string): string {
  return join(stateDir, 'projects', id, 'schema.ts');
}

export function logDirOf(stateDir: string, id: string): string {
  return join(stateDir, 'projects', id, 'logs');
}

/**
 * Write schema.ts when its content differs from what is on disk. Written in place (not renamed) so a file
 * bind-mounted into a container sees the new content; the schema watcher keys on mtime.
 */
export function materializeSchema(stateDir: string, id: string, content: string): { written: boolean; path: string } {
  const path = schemaFilePath(stateDir, id);
  const want = digest(content);
  if (existsSync(path) && digest(readFileSync(path, 'utf8')) === want) return { written: false, path };
  privateDir(dirname(path));
  writeFileSync(path, content);
  return { written: true, path };
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
