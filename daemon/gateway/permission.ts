// On-demand TLS: before Caddy asks a CA for a certificate it calls `GET <ask>?domain=<name>` and proceeds only
// on 200. Only names the registry routes may get a certificate, so a stranger pointing DNS at us gets none.
import type { RegistryRow } from '../core/types.ts';
import { hostTable, normalizeHost } from './hosts.ts';

/** Whether `host` is the hostname or an alias of a project the gateway serves (removed projects excluded). */
export function isAllowedHost(rows: RegistryRow[], host: string): boolean {
  const wanted = normalizeHost(host);
  if (wanted === '') return false;
  return hostTable(rows).some((entry) => entry.host === wanted);
}

/**
 * The daemon's `GET /gateway/allow?domain=...` answer. `url` is the request URL (path and query are enough).
 * 200 allowed, 403 not a registered name, 400 no `domain` parameter.
 */
export function permissionResponse(rows: RegistryRow[], url: string | URL): { status: number; body: string } {
  const parsed = typeof url === 'string' ? new URL(url, 'http://gateway.invalid') : url;
  const domain = parsed.searchParams.get('domain');
  if (!domain) return { status: 400, body: 'missing ?domain= parameter\n' };
  if (isAllowedHost(rows, domain)) return { status: 200, body: 'ok\n' };
  return { status: 403, body: `${normalizeHost(domain) || 'this name'} is not a hostname of any project\n` };
}
