// Which registry rows the gateway knows, in which state, under which host names, with which edge policy.
// Pure: the renderer and the on-demand TLS permission check both read the registry through these.
import type { EdgePolicy, FleetConfig, RegistryRow } from '../core/types.ts';

export const DEFAULT_REQUEST_ID_HEADER = 'X-Request-Id';

/**
 * How the gateway answers for a row:
 * - `up`: proxied to its upstream.
 * - `maintenance`: 503 with Retry-After. The project exists in git (a manifest is applied) but is not servable:
 *   `state: stopped`, provisioning, failed, unhealthy, or running without a known upstream.
 * - `null`: not rendered at all, so its hosts get the uniform 404. That is a project whose row says `deleted`,
 *   or whose folder was removed from git (the registry keeps the row, with `manifest: null`, to keep its database).
 *   "Unknown hosts get one uniform 404 whether a project never existed, was removed or is stopped" is read as
 *   "stopped because removed"; a project stopped on purpose with `state: stopped` still answers maintenance.
 */
export type RowRoute = 'up' | 'maintenance' | null;

export function rowRoute(row: RegistryRow): RowRoute {
  if (row.status === 'deleted' || row.manifest === null) return null;
  const healthy = row.lastHealth?.ok !== false;
  if (row.desiredState === 'running' && row.status === 'running' && row.upstream && healthy) return 'up';
  return 'maintenance';
}

/** Rows the gateway renders, sorted by id so every render of the same registry is byte-identical. */
export function knownRows(rows: RegistryRow[]): RegistryRow[] {
  return rows.filter((r) => rowRoute(r) !== null).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * A host as the gateway compares it: lower case, without `:port`, without one trailing dot.
 * Returns '' for something that cannot be a host (empty, spaces, slashes).
 */
export function normalizeHost(raw: string): string {
  let host = raw.trim().toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    host = end === -1 ? host : host.slice(0, end + 1);
  } else if (host.indexOf(':') === host.lastIndexOf(':')) {
    host = host.replace(/:\d*$/, '');
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host === '' || /[\s/\\@?#]/.test(host)) return '';
  return host;
}

export interface HostEntry {
  /** Normalized host name. */
  host: string;
  projectId: string;
  kind: 'hostname' | 'alias';
}

/**
 * Every host name the gateway routes, each once. Precedence on a clash: a project's primary hostname beats
 * another project's alias; between two equal claims the lower project id wins (stable, and reported by the
 * daemon's validation, not here).
 */
export function hostTable(rows: RegistryRow[]): HostEntry[] {
  const known = knownRows(rows);
  const taken = new Map<string, HostEntry>();
  const claim = (raw: string | null, projectId: string, kind: HostEntry['kind']) => {
    const host = raw ? normalizeHost(raw) : '';
    if (host !== '' && !taken.has(host)) taken.set(host, { host, projectId, kind });
  };
  for (const row of known) claim(row.hostname, row.id, 'hostname');
  for (const row of known) for (const alias of row.aliases) claim(alias, row.id, 'alias');
  return [...taken.values()];
}

export interface EffectivePolicy {
  requestIdHeader: string;
  maxBodyBytes?: number;
  allow: string[];
  deny: string[];
}

/** Fleet policy with the project's `edge:` fields laid over it, field by field (a project list replaces). */
export function effectivePolicy(fleet: EdgePolicy, project: EdgePolicy | undefined): EffectivePolicy {
  const merged = { ...fleet, ...definedOnly(project ?? {}) };
  const policy: EffectivePolicy = {
    requestIdHeader: merged.requestIdHeader || DEFAULT_REQUEST_ID_HEADER,
    allow: [...(merged.allow ?? [])],
    deny: [...(merged.deny ?? [])],
  };
  if (merged.maxBodyBytes !== undefined) policy.maxBodyBytes = merged.maxBodyBytes;
  return policy;
}

function definedOnly(p: EdgePolicy): EdgePolicy {
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as EdgePolicy;
}

/**
 * Projects grouped by identical effective policy. The renderer emits one route per group, not per project,
 * so the route count grows with the number of distinct policies, not with the number of projects.
 */
export function policyGroups(rows: RegistryRow[], gw: FleetConfig['gateway']): {
  policies: EffectivePolicy[];
  groupOf: Map<string, number>;
} {
  const policies: EffectivePolicy[] = [];
  const index = new Map<string, number>();
  const groupOf = new Map<string, number>();
  for (const row of knownRows(rows)) {
    const policy = effectivePolicy(gw.policies ?? {}, row.manifest?.edge);
    const key = JSON.stringify(policy);
    let at = index.get(key);
    if (at === undefined) {
      at = policies.length;
      policies.push(policy);
      index.set(key, at);
    }
    groupOf.set(row.id, at);
  }
  return { policies, groupOf };
}

/** Caddy's `dial` form of a registry upstream: `http://h:p` → `h:p`, a socket path → `unix//path`. */
export function dialAddress(upstream: string): string {
  if (upstream.startsWith('unix:')) return `unix/${upstream.slice('unix:'.length).replace(/^\/\//, '/')}`;
  if (upstream.startsWith('/')) return `unix/${upstream}`;
  return upstream.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}
