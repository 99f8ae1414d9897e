// What the API shows of the registry: pure functions from rows to JSON. The registry holds no secret values, and
// these show secret *names* only (not even the store references), so a project's secrets stay out of every answer.
import { lastManifest, type ProjectEvent, type ProjectRecord } from '../registry/registry.ts';
import { ApiError } from './respond.ts';

export function projectSummary(r: ProjectRecord) {
  return {
    id: r.id, displayName: r.displayName, hostname: r.hostname, aliases: r.aliases,
    status: r.status, desiredState: r.desiredState, present: r.present, suspended: r.suspended,
    upstream: r.upstream, appliedCommit: r.appliedCommit, observedCommit: r.observedCommit, schemaVersion: r.schemaVersion,
    lastHealth: r.lastHealth, conditions: r.conditions, lastError: r.lastError, restarts: r.restarts,
    restartGeneration: r.restartGeneration, restartRequestedBy: r.restartRequestedBy,
    secrets: Object.keys(r.secretRefs).sort(), updatedAt: r.updatedAt,
  };
}

/** One project in full: the summary, its database names and the last applied manifest (validated: no secret values). */
export function projectDetail(r: ProjectRecord) {
  const m = lastManifest(r);
  return {
    ...projectSummary(r), databaseName: r.databaseName, roleName: r.roleName, port: r.port, specHash: r.specHash,
    schemaDigest: r.schemaDigest, createdAt: r.createdAt,
    manifest: m && { ...m, secrets: Object.keys(m.secrets ?? {}).sort() },
  };
}

export const EVENTS_DEFAULT_LIMIT = 50;
export const EVENTS_MAX_LIMIT = 500;
const ID = /^[a-z][a-z0-9_]{0,39}$/;

export interface EventsQuery {
  project?: string;
  before?: number;
  limit: number;
}

/** `?project=&before=&limit=` checked: a bad value is a 400 naming it and what it takes. */
export function eventsQuery(url: URL): EventsQuery {
  const q = url.searchParams;
  const out: EventsQuery = { limit: EVENTS_DEFAULT_LIMIT };
  const project = q.get('project');
  if (project !== null && project !== '') {
    if (!ID.test(project)) throw new ApiError(400, `project must be a project id (lower case letters, digits, _), got ${JSON.stringify(project.slice(0, 50))}`);
    out.project = project;
  }
  const whole = (name: string, max: number): number | undefined => {
    const v = q.get(name);
    if (v === null || v === '') return undefined;
    if (!/^\d{1,15}$/.test(v) || Number(v) < 1 || Number(v) > max) throw new ApiError(400, `${name} must be a whole number from 1 to ${max}, got ${JSON.stringify(v.slice(0, 50))}`);
    return Number(v);
  };
  out.before = whole('before', Number.MAX_SAFE_INTEGER);
  out.limit = whole('limit', EVENTS_MAX_LIMIT) ?? EVENTS_DEFAULT_LIMIT;
  return out;
}

/** A page of events, newest first; `next` is the `before` of the following page, null on the last one. */
export function eventsPage(events: ProjectEvent[], limit: number): { events: ProjectEvent[]; next: number | null } {
  const page = events.slice(0, limit);
  return { events: page, next: events.length > limit ? page[page.length - 1].id : null };
}

const ACTOR = /^[\p{L}\p{N}._@+-]{1,64}$/u;

/** Who asks (recorded in events): the body's `actor`, else "operator". A name, never free text. */
export function actorOf(body: Record<string, unknown>): string {
  const a = body.actor;
  if (a === undefined || a === null || a === '') return 'operator';
  if (typeof a !== 'string' || !ACTOR.test(a)) throw new ApiError(400, 'actor must be a name of 1 to 64 letters, digits or . _ @ + - (such as alice or ops@example.com)');
  return a;
}
