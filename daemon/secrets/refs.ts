// Secret references: absolute parameter names such as `/atomo/acme/JWT_SECRET`, shared by every store.
// Kept apart from index.ts so the stores can use it without importing the registry that imports them.
import { FleetError } from '../core/errors.ts';
import type { SecretStore } from '../core/types.ts';

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
  const why = refProblem(ref);
  if (why) throw new FleetError('SECRET_STORE', `secret reference "${ref}" ${why}`, { project });
  return ref;
}

/**
 * What is wrong with an absolute reference ("must not contain \".\" or \"..\" segments"), or null when it is fine.
 * Never throws: validation reports the reason on the manifest line, checkRef throws it.
 */
export function refProblem(ref: string): string | null {
  if (typeof ref !== 'string' || !ref.startsWith('/')) return 'must be an absolute path such as /atomo/<project>/NAME';
  if (ref.length > 1011) return 'is longer than the 1011 characters SSM allows';
  const segments = ref.slice(1).split('/');
  for (const segment of segments) {
    if (segment === '') return 'has an empty path segment (// or a trailing /)';
    if (segment === '..' || segment === '.') return 'must not contain "." or ".." segments';
    if (!SEGMENT.test(segment)) return 'may only use letters, digits, "_", "." and "-" between slashes';
  }
  if (segments.length > 15) return 'is nested deeper than the 15 levels SSM allows';
  return null;
}

/** Secrets of the fleet itself (`<prefix>/fleet/...`: admin URL, git token): never readable by a project. */
export const FLEET_SECRETS_ID = 'fleet';
/** The one folder under the prefix fleet.yaml may share (`<prefix>/shared/...`); `shared` is a reserved id. */
export const SHARED_SECRETS_ID = 'shared';

/**
 * Whether a project may read the (already resolved, absolute) reference `resolvedRef`: only its own secrets,
 * under `<prefix>/<projectId>/`, or one fleet.yaml shares (`sharedSecrets`: an exact reference, or a path ending in
 * `/` that shares everything under it). Anything malformed (`..`, `//`, relative) is refused, and so are the fleet's
 * own path and other projects' paths whatever is shared: under the prefix only `<prefix>/shared/` can be shared. Pure: validation and the daemon at runtime call the same function.
 */
export function secretRefAllowed(prefix: string, sharedSecrets: string[], projectId: string, resolvedRef: string): boolean {
  if (typeof resolvedRef !== 'string' || refProblem(resolvedRef) !== null) return false;
  const base = `${cleanPrefix(prefix)}/`;
  if (resolvedRef.startsWith(`${base}${FLEET_SECRETS_ID}/`)) return false;
  const own = `${base}${projectId}/`;
  if (projectId && resolvedRef.startsWith(own)) return true;
  // Under the prefix, only <prefix>/shared/ can be shared: no entry opens another project's path to this one.
  if (resolvedRef.startsWith(base) && !resolvedRef.startsWith(`${base}${SHARED_SECRETS_ID}/`)) return false;
  return sharedSecrets.some((entry) => entry.endsWith('/')
    ? resolvedRef.startsWith(entry) && refProblem(entry.slice(0, -1)) === null
    : resolvedRef === entry);
}

/** Normalise a prefix from fleet.yaml: leading slash, no trailing slash. */
export function cleanPrefix(prefix: string): string {
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
