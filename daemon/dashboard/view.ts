// How one registry row reads to an operator (state, health and its age, drift, the problem to look at): one
// definition for `fleet status` and the dashboard, so the two never disagree. Pure.
import type { Condition, RegistryRow } from '../core/types.ts';
import { ago } from './age.ts';
import { DEFAULT_DATABASE_SERVER } from '../core/servers.ts';

export type ProjectView = Pick<RegistryRow, 'id' | 'status' | 'desiredState' | 'lastHealth' | 'appliedCommit' | 'observedCommit' | 'conditions'>
  & { present: boolean; lastError: string | null };

export const shortCommit = (c: string | null | undefined) => (c ? c.slice(0, 7) : '-');

/** `running`, `provisioning→running`, `stopped (folder removed)`. */
export function stateText(p: ProjectView): string {
  if (!p.present) return `${p.status} (folder removed)`;
  return p.desiredState === p.status || p.status === 'deleted' ? p.status : `${p.status}→${p.desiredState}`;
}

/**
 * `healthy for 12s`, `unhealthy (503) for 3m`, `-`. The registry records health when the answer changes (every
 * probe round confirms it meanwhile), so the age is how long the instance has answered so.
 */
export function healthText(p: ProjectView, now: Date): string {
  const h = p.lastHealth;
  if (!h) return '-';
  const word = h.ok ? 'healthy' : `unhealthy (${h.status ?? h.error ?? '?'})`;
  const age = ago(h.at, now);
  return age === '-' ? word : `${word} for ${age.replace(/ ago$/, '')}`;
}

/**
 * Drift is git asking for something not applied yet: a deleted project, or a removed folder whose instance is
 * stopped, has nothing pending whatever commit it was last seen at. `yes (abc1234)` names the commit waiting.
 */
export function driftText(p: ProjectView): string {
  const settled = p.status === 'deleted' || (!p.present && p.status === 'stopped');
  return !settled && p.observedCommit && p.appliedCommit !== p.observedCommit ? `yes (${shortCommit(p.observedCommit)})` : 'no';
}

/** The condition an operator should look at first, if any: invalid, stalled, or a reconcile that failed. */
export function problemOf(p: ProjectView): Condition | undefined {
  return p.conditions.find((c) => (c.type === 'Invalid' && c.status) || (c.type === 'Stalled' && c.status) || (c.type === 'Reconciling' && !c.status));
}

/** `Stalled: CrashLoopBackOff: exited 3 times`, else the last error, else empty. */
export function problemText(p: ProjectView): string {
  const c = problemOf(p);
  return c ? `${c.reason}: ${c.message}` : (p.lastError ?? '');
}

/**
 * Where the database lives: `hot`, `hot (old copy kept on main)`; empty for the default server with no kept copy,
 * so a fleet that never moved a database reads as before.
 */
export function databaseText(p: { databaseServer?: string; oldDatabaseServer?: string | null }): string {
  const server = p.databaseServer ?? DEFAULT_DATABASE_SERVER;
  if (server === DEFAULT_DATABASE_SERVER && !p.oldDatabaseServer) return '';
  return p.oldDatabaseServer ? `${server} (old copy kept on ${p.oldDatabaseServer})` : server;
}
