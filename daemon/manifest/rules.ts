// Rules JSON Schema cannot express: per project (folder name, schema path, secrets) and across the fleet
// (unique ids, hostnames and aliases). Pure functions over already-parsed manifests.
import { posix } from 'node:path';
import cron from 'node-cron';
import { cleanPrefix, refProblem, secretRefAllowed } from '../secrets/refs.ts';
import type { DesiredFleet, DesiredProject, FleetConfig, InvalidProject, Manifest, ValidationIssue } from '../core/types.ts';
import { capIssues, type Position } from './parse.ts';
import { databaseServers } from '../core/servers.ts';
import { placementProblems } from './placement.ts';

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
 * Decision, as the README describes it (`*SECRET*`, `*PASSWORD*`, `*TOKEN*`, `*KEY`): any case, with or without `_`
 * separators, the name contains SECRET, PASSWORD, PASSWD, TOKEN or PRIVATE anywhere, or ends in KEY, or is
 * DATABASE_URL. So JWT_SECRET, APIKEY, MYTOKEN, TOKEN_TTL and PRIVATE_PEM are secret-like (and, by the same glob,
 * MONKEY); KEYBOARD_LAYOUT and KEY_ID are not.
 */
export function isSecretLikeName(name: string): boolean {
  const upper = name.toUpperCase();
  if (['SECRET', 'PASSWORD', 'PASSWD', 'TOKEN', 'PRIVATE'].some((word) => upper.includes(word))) return true;
  return upper.endsWith('KEY') || upper === 'DATABASE_URL';
}

/**
 * Ids that would map to a control-plane name (database and role `atomo_<id>`, secrets `<prefix>/<id>/`), with why.
 * Ids starting with `pg_` are refused too (Postgres reserves the prefix for its own roles).
 */
export const RESERVED_ID_REASONS: Readonly<Record<string, string>> = Object.freeze({
  fleet: "the fleet's own database and secrets",
  registry: "the fleet's registry database",
  postgres: "Postgres's own database and role",
  template0: "Postgres's template databases",
  template1: "Postgres's template databases",
  shared: 'secrets shared across projects',
  admin: 'administrative roles',
  root: 'administrative roles',
  public: "Postgres's PUBLIC role and schema",
});

export const RESERVED_IDS: readonly string[] = Object.freeze(Object.keys(RESERVED_ID_REASONS));

/** Why an id may not be used, or null when it may. */
export function reservedIdProblem(id: string): string | null {
  if (Object.hasOwn(RESERVED_ID_REASONS, id)) {
    return `\`${id}\` is reserved for ${RESERVED_ID_REASONS[id]}; choose another id`;
  }
  if (id.startsWith('pg_')) return "ids starting with pg_ are reserved for Postgres's own roles; choose another id";
  return null;
}

/** Env names the fleet generates for every project: never set in env, never pointed elsewhere under secrets. */
export const GENERATED_SECRETS = ['DATABASE_URL', 'JWT_SECRET'];

/** A URL with a password in it (`postgres://u:p@h/db`) is a secret whatever its name. */
export function hasUrlCredentials(value: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\/[^/@\s:]*:[^/@\s]+@/i.test(value);
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
  const reserved = reservedIdProblem(m.id);
  if (reserved) add('/id', reserved);
  const schemaPath = schemaPathInFolder(m.schema);
  if ('error' in schemaPath) add('/schema', schemaPath.error);
  for (const [name, value] of Object.entries(m.env)) {
    if (GENERATED_SECRETS.includes(name)) {
      add(`/env/${name}`, `looks like a secret and is generated by the fleet for every project; remove it (the instance always gets its own ${name})`);
    } else if (isSecretLikeName(name) || hasUrlCredentials(value)) {
      add(`/env/${name}`, `looks like a secret: move it to "secrets:" as a reference (secrets: { ${name}: ${name} })` +
        ' and store the value with `fleet secrets set`');
    } else if (RESERVED_ENV.includes(name)) {
      add(`/env/${name}`, `is set by the fleet for every instance; remove it`);
    }
    if (name in m.secrets) add(`/env/${name}`, `is also under secrets:; keep only one`);
  }
  for (const [name, ref] of Object.entries(m.secrets)) {
    // `JWT_SECRET: JWT_SECRET` names the generated value itself (the example projects say so): harmless.
    if (GENERATED_SECRETS.includes(name) && ref !== name) {
      add(`/secrets/${name}`, `is generated by the fleet for every project and cannot point elsewhere; remove this line`);
    }
  }
  resourceRules(m, add);
  if (m.state === 'deleted' && m.deletion?.confirm !== m.id) {
    add(m.deletion ? '/deletion/confirm' : '/state',
      `state: deleted needs deletion.confirm set to "${m.id}" to confirm the deletion`);
  }
  for (const [i, alias] of m.aliases.entries()) {
    if (alias === m.hostname) add(`/aliases/${i}`, `"${alias}" is already the hostname; remove the alias`);
  }
  // The schema checks a constraint's shape; Swarm accepts only these two roles.
  for (const [i, c] of (m.placement?.constraints ?? []).entries()) {
    const role = /^node\.role ?[=!]= ?(.*)$/.exec(c)?.[1];
    if (role !== undefined && role !== 'manager' && role !== 'worker') add(`/placement/constraints/${i}`, `node.role can only be manager or worker, not "${role}"`);
  }
  return issues;
}

const MIB = 1024 ** 2;
const UNIT = { k: 1024, m: MIB, g: 1024 ** 3 } as const;

/** Limits the schema cannot state: memory as bytes, cpus in steps of 0.01, a cron schedule node-cron accepts. */
function resourceRules(m: Manifest, add: (path: string, message: string) => void) {
  // Stryker disable next-line StringLiteral: equivalent, no replacement string matches the size pattern either.
  const memory = /^([0-9]+)([kmg])$/.exec(m.resources.memory ?? '');
  if (memory) {
    const bytes = Number(memory[1]) * UNIT[memory[2] as keyof typeof UNIT];
    if (bytes < 6 * MIB || bytes > 1024 * UNIT.g) {
      add('/resources/memory', "must be between 6m (Docker's minimum) and 1024g");
    }
  }
  const cpus = m.resources.cpus;
  if (cpus !== undefined && Math.abs(cpus * 100 - Math.round(cpus * 100)) > 1e-6) {
    add('/resources/cpus', 'must be a multiple of 0.01, such as 0.5 or 1.25');
  }
  if (m.backup && !cronSchedulable(m.backup.schedule)) {
    add('/backup/schedule', 'is not a cron schedule the daemon can run; use 5 or 6 fields such as "0 3 * * *" (minute hour day month weekday)');
  }
}

/** node-cron's own check, after refusing numbers no cron field has (node-cron expands ranges: `1-2000000` is slow). */
export function cronSchedulable(schedule: string): boolean {
  if (schedule.length > 100 || /[0-9]{3,}/.test(schedule)) return false;
  try {
    return cron.validate(schedule);
  } catch {
    return false;
  }
}

interface Claim {
  folder: string;
  file: string;
  pointer: string;
}

/**
 * Cross-project rules and the secret scope (which needs fleet.yaml), then the split into valid and invalid projects.
 *
 * Decision on conflicts (same id, hostname or alias in two projects): BOTH projects are reported invalid.
 * This layer cannot tell which one held the name first, and the daemon keeps running what it last applied
 * for an invalid project, so nothing goes down; the operator fixes one of the two files.
 *
 * `fleet` null (fleet.yaml missing or invalid): secret prefix /atomo, nothing shared.
 */
export function combineFleet(commit: string, checks: ProjectCheck[], fleet: FleetConfig | null = null): DesiredFleet {
  const extra = new Map<string, ValidationIssue[]>();
  const push = (folder: string, issue: ValidationIssue) => {
    const list = extra.get(folder);
    if (list) list.push(issue);
    else extra.set(folder, [issue]);
  };
  const add = <K, V>(map: Map<K, V[]>, key: K, value: V) => {
    const list = map.get(key);
    if (list) list.push(value);
    else map.set(key, [value]);
  };
  const claims = new Map<string, Claim[]>();
  const ids = new Map<string, Claim[]>();
  for (const c of checks) {
    if (!c.manifest) continue;
    add(ids, c.manifest.id, { folder: c.folder, file: c.file, pointer: '/id' });
    const names: [string, string][] = [['/hostname', c.manifest.hostname]];
    c.manifest.aliases.forEach((a, i) => names.push([`/aliases/${i}`, a]));
    for (const [pointer, name] of names) {
      add(claims, name, { folder: c.folder, file: c.file, pointer });
    }
    for (const issue of secretScope(c, fleet)) push(c.folder, issue);
    for (const issue of serverScope(c, fleet)) push(c.folder, issue);
    // Placement is fleet.yaml's to open (placement.ts): a project may not pin itself onto the manager or a node.
    for (const p of placementProblems(c.manifest, fleet)) push(c.folder, { file: c.file, ...(c.positions[p.path] ?? { line: 1, column: 1 }), ...p });
  }
  const byFolder = new Map(checks.map((c) => [c.folder, c]));
  const conflict = (value: string, list: Claim[], rule: string) => {
    const folders = new Set(list.map((l) => l.folder));
    if (folders.size < 2) return;
    for (const claim of list) {
      // Name at most three others: a name shared by hundreds of folders must not cost hundreds squared.
      const others: string[] = [];
      let more = 0;
      for (const o of list) {
        if (o.folder === claim.folder) continue;
        if (others.length < 3) others.push(`${o.file} ${o.pointer}`);
        else more++;
      }
      if (more) others.push(`${more} more`);
      // Stryker disable next-line OptionalChaining: equivalent, every claim comes from a check in byFolder.
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
    const errors = capIssues([...c.issues, ...(extra.get(c.folder) ?? [])]);
    if (errors.length || !c.manifest || !c.schema) {
      invalid.push({ id: c.folder, errors });
    } else {
      projects.push({ id: c.manifest.id, manifest: c.manifest, schema: c.schema, commit });
    }
  }
  return { commit, projects, invalid };
}

/** `database.server` must be a server fleet.yaml names (without a valid fleet.yaml: only the default one). */
function serverScope(c: ProjectCheck, fleet: FleetConfig | null): ValidationIssue[] {
  const server = c.manifest!.database?.server;
  const names = Object.keys(databaseServers(fleet));
  if (server === undefined || names.includes(server)) return [];
  const path = '/database/server';
  return [{
    file: c.file, ...(c.positions[path] ?? { line: 1, column: 1 }), path,
    message: `fleet.yaml names no Postgres server "${server}"; the servers are: ${names.join(', ')} (add it under postgres.servers in fleet.yaml)`,
  }];
}

/** Each `secrets:` reference, resolved, must be a valid reference under the project's own path or shared. */
function secretScope(c: ProjectCheck, fleet: FleetConfig | null): ValidationIssue[] {
  const m = c.manifest!;
  const prefix = cleanPrefix(fleet?.secretStore.prefix ?? '/atomo');
  // Stryker disable next-line ArrayDeclaration: equivalent, an entry without a leading / never equals a valid reference.
  const shared = fleet?.sharedSecrets ?? [];
  const issues: ValidationIssue[] = [];
  for (const [name, ref] of Object.entries(m.secrets)) {
    const path = `/secrets/${name}`;
    const add = (message: string) => issues.push({ file: c.file, ...(c.positions[path] ?? { line: 1, column: 1 }), path, message });
    const resolved = ref.startsWith('/') ? ref : `${prefix}/${m.id}/${ref}`;
    const problem = refProblem(resolved);
    if (problem) {
      add(ref.startsWith('/') ? problem : `${problem} once resolved under ${prefix}/${m.id}/`);
    } else if (!secretRefAllowed(prefix, shared, m.id, resolved)) {
      add(`may name only secrets under ${prefix}/${m.id}/ or ones fleet.yaml lists in sharedSecrets; ` +
        `store the value under ${prefix}/${m.id}/, or add the reference to sharedSecrets in fleet.yaml`);
    }
  }
  return issues;
}
