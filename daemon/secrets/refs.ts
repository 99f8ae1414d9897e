// Secret references: absolute parameter names such as `/atomo/acme/JWT_SECRET`, shared by every store.
// Kept apart from index.ts so the stores can use it without importing the registry that imports them.
import { FleetError } from '../errors.ts';
import type { SecretStore } from '../types.ts';

/** One stored parameter, without its value. */
export interface SecretInfo {
  ref: string;
  version: number;
  lastModified: string;
}

/** What both stores offer beyond `SecretStore`: listing a path and reading many references at once. */
export interface FleetSecretStore extends SecretStore {
  /** Parameters under `path` (recursive), names and versions only: never values. */
  list(path: string): Promise<SecretInfo[]>;
  /** Values of many references; any missing → SECRET_MISSING naming every missing reference. */
  getMany(refs: string[]): Promise<Record<string, string>>;
}

// The characters SSM accepts in a parameter name; a local store keeps the same rule so refs move between stores.
const SEGMENT = /^[A-Za-z0-9_.-]+$/;

/** Check an absolute reference; returns it unchanged. Bad → FleetError SECRET_STORE saying what is wrong. */
export function checkRef(ref: string, project?: string): string {
  const bad = (why: string) =>
    new FleetError('SECRET_STORE', `secret reference "${ref}" ${why}`, { project });
  if (typeof ref !== 'string' || !ref.startsWith('/')) throw bad('must be an absolute path such as /atomo/<project>/NAME');
  if (ref.length > 1011) throw bad('is longer than the 1011 characters SSM allows');
  const segments = ref.slice(1).split('/');
  for (const segment of segments) {
    if (segment === '') throw bad('has an empty path segment (// or a trailing /)');
    if (segment === '..' || segment === '.') throw bad('must not contain "." or ".." segments');
    if (!SEGMENT.test(segment)) throw bad('may only use letters, digits, "_", "." and "-" between slashes');
  }
  if (segments.length > 15) throw bad('is nested deeper than the 15 levels SSM allows');
  return ref;
}

/** Normalise a prefix from fleet.yaml: leading slash, no trailing slash. */
function cleanPrefix(prefix: string): string {
  const withSlash = prefix.startsWith('/') ? prefix : `/${prefix}`;
  return withSlash.replace(/\/+$/, '');
}

/** The reference of a project's secret: `secretRef('/atomo', 'acme', 'JWT_SECRET')` → `/atomo/acme/JWT_SECRET`. */
export function secretRef(prefix: string, projectId: string, name: string): string {
  return checkRef(`${cleanPrefix(prefix)}/${projectId}/${name}`, projectId);
}

/**
 * Resolve a manifest's secret reference: one starting with `/` is absolute, anything else is a name under the
 * project's own path (`JWT_SECRET`, `db/URL`).
 */
export function resolveRef(prefix: string, projectId: string, ref: string): string {
  if (typeof ref !== 'string' || ref === '') {
    throw new FleetError('SECRET_STORE', `project ${projectId}: an empty secret reference; name a secret such as JWT_SECRET`, {
      project: projectId,
    });
  }
  if (ref.startsWith('/')) return checkRef(ref, projectId);
  return checkRef(`${cleanPrefix(prefix)}/${projectId}/${ref}`, projectId);
}

/** The path every secret of a project lives under, for listing and IAM policies. */
export function projectPath(prefix: string, projectId: string): string {
  return checkRef(`${cleanPrefix(prefix)}/${projectId}`, projectId);
}

/** The project a reference belongs to, when it lies under `<prefix>/<project>/`; for error context only. */
export function projectOf(prefix: string | undefined, ref: string): string | undefined {
  if (!prefix) return undefined;
  const base = `${cleanPrefix(prefix)}/`;
  if (!ref.startsWith(base)) return undefined;
  const [project, ...rest] = ref.slice(base.length).split('/');
  return rest.length > 0 && project ? project : undefined;
}
