// Rules JSON Schema cannot express: per project (folder name, schema path, secrets) and across the fleet
// (unique ids, hostnames and aliases). Pure functions over already-parsed manifests.
import { posix } from 'node:path';
import type { DesiredFleet, DesiredProject, InvalidProject, Manifest, ValidationIssue } from '../types.ts';
import type { Position } from './parse.ts';

/** One project folder after its own checks: what the cross-project rules work on. */
export interface ProjectCheck {
  /** The folder name under projects/. */
  folder: string;
  /** Repo-relative path of project.yaml. */
  file: string;
  manifest: Manifest | null;
  schema: { path: string; content: string; digest: string } | null;
  issues: ValidationIssue[];
  /** Line/column of values cross-project messages point at, by JSON pointer (/hostname, /aliases/0). */
  positions: Record<string, Position>;
}

/**
 * Env names whose values are secrets and so must be under `secrets:` as references.
 * Decision: the last `_` word is SECRET, PASSWORD, PASSWD, TOKEN, KEY or APIKEY (JWT_SECRET, API_KEY,
 * GITHUB_TOKEN), or the name contains the word SECRET or PASSWORD anywhere (SECRET_SALT, DB_PASSWORD_OLD),
 * or it is DATABASE_URL. Names like TOKEN_TTL or KEYBOARD_LAYOUT are not secret-like.
 */
export function isSecretLikeName(name: string): boolean {
  const words = name.toUpperCase().split('_').filter(Boolean);
  const last = words[words.length - 1] ?? '';
  if (['SECRET', 'PASSWORD', 'PASSWD', 'TOKEN', 'KEY', 'APIKEY'].includes(last)) return true;
  if (words.includes('SECRET') || words.includes('PASSWORD')) return true;
  return name.toUpperCase() === 'DATABASE_URL';
}

/** A URL with a password in it (`postgres://u:p@h/db`) is a secret whatever its name. */
export function hasUrlCredentials(value: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\/[^/@\s:]+:[^/@\s]+@/i.test(value);
}

/** Env names the fleet sets itself for every instance; a project cannot override them. */
export const RESERVED_ENV = ['HOST', 'PORT', 'ATOMO_SCHEMA_PATH', 'ATOMO_PROJECT_ID'];

/** The schema file's path relative to the project folder, or an error when it leaves the folder. */
export function schemaPathInFolder(schema: string): { path: string } | { error: string } {
  if (schema.includes('\\') || schema.includes('\0')) return { error: 'must be a relative path using /' };
  if (posix.isAbsolute(schema)) return { error: 'must be relative to the project folder, not absolute' };
  const normalized = posix.normalize(schema);
  if (normalized === '.' || normalized === '..' || normalized.startsWith('../')) {
    return { error: 'must stay inside the project folder (no ..)' };
  }
  return { path: normalized };
}

type At = (pointer: string) => Position;

/** Rules on one valid-by-schema manifest in its folder. `at` gives the position of a JSON pointer. */
export function projectRules(folder: string, file: string, m: Manifest, at: At): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const add = (path: string, message: string) => issues.push({ file, ...at(path), path, message });
  if (m.id !== folder) {
    add('/id', `must equal the folder name "${folder}" (rename the folder or change the id)`);
  }
  const schemaPath = schemaPathInFolder(m.schema);
  if ('error' in schemaPath) add('/schema', schemaPath.error);
  for (const [name, value] of Object.entries(m.env)) {
    if (isSecretLikeName(name) || hasUrlCredentials(value)) {
      add(`/env/${name}`, `looks like a secret: move it to "secrets:" as a reference (secrets: { ${name}: ${name} })` +
        ' and store the value with `fleet secrets set`');
    } else if (RESERVED_ENV.includes(name)) {
      add(`/env/${name}`, `is set by the fleet for every instance; remove it`);
    }
    if (name in m.secrets) add(`/env/${name}`, `is also under secrets:; keep only one`);
  }
  if (m.state === 'deleted' && m.deletion?.confirm !== m.id) {
    add(m.deletion ? '/deletion/confirm' : '/state',
      `state: deleted needs deletion.confirm set to "${m.id}" to confirm the deletion`);
  }
  for (const [i, alias] of m.aliases.entries()) {
    if (alias === m.hostname) add(`/aliases/${i}`, `"${alias}" is already the hostname; remove the alias`);
  }
  return issues;
}

interface Claim {
  folder: string;
  file: string;
  pointer: string;
}

/**
 * Cross-project rules, then the split into valid and invalid projects.
 *
 * Decision on conflicts (same id, hostname or alias in two projects): BOTH projects are reported invalid.
 * This layer cannot tell which one held the name first, and the daemon keeps running what it last applied
 * for an invalid project, so nothing goes down; the operator fixes one of the two files.
 */
export function combineFleet(commit: string, checks: ProjectCheck[]): DesiredFleet {
  const extra = new Map<string, ValidationIssue[]>();
  const push = (folder: string, issue: ValidationIssue) => {
    extra.set(folder, [...(extra.get(folder) ?? []), issue]);
  };
  const claims = new Map<string, Claim[]>();
  const ids = new Map<string, Claim[]>();
  for (const c of checks) {
    if (!c.manifest) continue;
    ids.set(c.manifest.id, [...(ids.get(c.manifest.id) ?? []), { folder: c.folder, file: c.file, pointer: '/id' }]);
    const names: [string, string][] = [['/hostname', c.manifest.hostname]];
    c.manifest.aliases.forEach((a, i) => names.push([`/aliases/${i}`, a]));
    for (const [pointer, name] of names) {
      claims.set(name, [...(claims.get(name) ?? []), { folder: c.folder, file: c.file, pointer }]);
    }
  }
  const byFolder = new Map(checks.map((c) => [c.folder, c]));
  const conflict = (value: string, list: Claim[], rule: string) => {
    const folders = new Set(list.map((l) => l.folder));
    if (folders.size < 2) return;
    for (const claim of list) {
      const others = list.filter((o) => o.folder !== claim.folder).map((o) => `${o.file} ${o.pointer}`);
      const pos = byFolder.get(claim.folder)?.positions[claim.pointer] ?? { line: 1, column: 1 };
      push(claim.folder, {
        file: claim.file, ...pos, path: claim.pointer,
        message: `"${value}" is also used by ${others.join(', ')}; ${rule}`,
      });
    }
  };
  for (const [name, list] of claims) conflict(name, list, 'hostnames and aliases must be unique across the fleet');
  for (const [id, list] of ids) conflict(id, list, 'ids must be unique across the fleet');

  const projects: DesiredProject[] = [];
  const invalid: InvalidProject[] = [];
  for (const c of [...checks].sort((a, b) => a.folder.localeCompare(b.folder))) {
    const errors = [...c.issues, ...(extra.get(c.folder) ?? [])];
    if (errors.length || !c.manifest || !c.schema) {
      invalid.push({ id: c.folder, errors });
    } else {
      projects.push({ id: c.manifest.id, manifest: c.manifest, schema: c.schema, commit });
    }
  }
  return { commit, projects, invalid };
}
