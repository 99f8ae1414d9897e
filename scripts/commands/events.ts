// `fleet events [<id>]`: what the fleet did, from the registry's project_events, newest last, in columns.
import type { Command } from '../command.ts';
import { readEnv } from '../../daemon/config/env.ts';
import { FleetError } from '../../daemon/core/errors.ts';
import { createLogger } from '../../daemon/log.ts';
import { registryUrlFor, stateDirFor } from '../../daemon/postgres/resolve.ts';
import { Registry, type ProjectEvent } from '../../daemon/registry/registry.ts';
import { renderTable } from './status.ts';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
const PAGE = 500;

/** `10m`, `2h`, `3d`, `45s` before `now`, or an ISO time; null when it is neither. */
export function parseSince(text: string, now: Date): Date | null {
  const rel = /^(\d{1,9})([smhd])$/.exec(text.trim());
  if (rel) return new Date(now.getTime() - Number(rel[1]) * UNITS[rel[2]] * 1000);
  if (!/^\d{4}-\d\d-\d\d/.test(text)) return null;
  const t = Date.parse(text);
  return Number.isFinite(t) ? new Date(t) : null;
}

/** `2026-05-01 12:00:03` in local time: what a person reads in a terminal. */
function localTime(iso: string): string {
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function detailText(detail: Record<string, unknown> | null): string {
  if (!detail) return '';
  return Object.entries(detail).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ').replace(/\s+/g, ' ');
}

// Actors are commit authors and details quote manifests: neither may move the cursor or recolour the terminal.
const cell = (text: string) => text.replace(/[\x00-\x1f\x7f\x9b]/g, '?');

export function eventRow(e: ProjectEvent): string[] {
  return [localTime(e.at), e.projectId, e.action, e.actor ?? '-', e.commit ? e.commit.slice(0, 7) : '-', detailText(e.detail)].map(cell);
}

/** The newest `limit` events (of one project or all) at or after `since`, oldest first. */
async function readEvents(registry: Registry, o: { project?: string; since: Date | null; limit: number }): Promise<ProjectEvent[]> {
  const out: ProjectEvent[] = [];
  let before: number | undefined;
  // Pages run newest first: stop at the limit or at the first event older than --since.
  for (;;) {
    const page = await registry.eventsPage({ project: o.project, before, limit: Math.min(PAGE, o.limit - out.length) });
    for (const e of page) {
      if (o.since && Date.parse(e.at) < o.since.getTime()) return out.reverse();
      out.push(e);
    }
    if (page.length === 0 || out.length >= o.limit) return out.reverse();
    before = page.at(-1)!.id;
  }
}

const usage = 'fleet events [<project>] [--since 10m|2h|3d|ISO] [--limit N] [--registry URL] [--state-dir DIR] [--format text|json]';

function usageError(message: string): number {
  console.error(`fleet events: ${message}\nusage: ${usage}`);
  return 2;
}

const command: Command = {
  summary: 'Print what the fleet did (the registry\'s events), newest last: for every project or one.',
  usage,
  options: {
    since: { type: 'string' }, limit: { type: 'string', default: '50' }, registry: { type: 'string' }, 'state-dir': { type: 'string' },
    format: { type: 'string', default: 'text' },
  },
  async run({ values, positionals, repo }) {
    const [project, ...extra] = positionals;
    if (extra.length) return usageError('name at most one project');
    const format = String(values.format);
    if (format !== 'text' && format !== 'json') return usageError(`--format must be text or json, not "${format}"`);
    const limit = Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) return usageError(`--limit takes a whole number from 1 to 100000, not "${values.limit}"`);
    const since = typeof values.since === 'string' ? parseSince(values.since, new Date()) : null;
    if (typeof values.since === 'string' && !since) return usageError(`--since takes an age such as 10m, 2h or 3d, or an ISO time such as 2026-05-01T12:00:00Z, not "${values.since}"`);
    const env = readEnv();
    const stateDir = stateDirFor(repo, env, values['state-dir'] as string | undefined);
    const url = await registryUrlFor(repo, values.registry as string | undefined, env, { stateDir });
    const registry = new Registry(url, createLogger({ level: 'silent' }));
    try {
      let events: ProjectEvent[];
      try {
        events = await readEvents(registry, { project, since, limit });
      } catch (err) {
        throw new FleetError('POSTGRES_UNREACHABLE', 'the registry is unreachable: is the daemon running (npm start)? Or pass --registry URL / FLEET_REGISTRY_URL', { cause: err });
      }
      if (format === 'json') console.log(JSON.stringify(events, null, 2));
      else if (!events.length) console.log('no events');
      else console.log(renderTable([['TIME', 'PROJECT', 'ACTION', 'ACTOR', 'COMMIT', 'DETAIL'], ...events.map(eventRow)]));
      return 0;
    } finally {
      await registry.close();
    }
  },
};

export default command;
