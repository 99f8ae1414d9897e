// `fleet status`: the fleet as the registry sees it: state, health, applied commit, drift and last error.
import type { Command } from '../command.ts';
import { readEnv } from '../../daemon/config/env.ts';
import { createLogger } from '../../daemon/log.ts';
import { FleetError } from '../../daemon/core/errors.ts';
import { registryUrlFor, stateDirFor } from '../../daemon/postgres/resolve.ts';
import { databaseText, driftText, healthText, problemText, stateText } from '../../daemon/dashboard/view.ts';
import { daemonState } from '../daemon-state.ts';
import { Registry, type ProjectRecord } from '../../daemon/registry/registry.ts';

const short = (c: string | null) => (c ? c.slice(0, 7) : '-');

/** A DATABASE column only when some project's database is not plainly on the default server. */
const withDatabase = (all: ProjectRecord[]) => all.some((p) => databaseText(p) !== '');

export function statusHeader(all: ProjectRecord[]): string[] {
  return ['ID', 'STATE', 'HEALTH', 'APPLIED', 'DRIFT', 'SUSPENDED', ...(withDatabase(all) ? ['DATABASE'] : []), 'LAST ERROR'];
}

/** One row; `all` (the rows of the table) decides whether it has a DATABASE cell (the server, and a kept old copy). */
export function statusLine(p: ProjectRecord, now = new Date(), all: ProjectRecord[] = [p]): string[] {
  const health = healthText(p, now);
  // One reading of a row for status and the dashboard (daemon/dashboard/view.ts): state, drift, the problem.
  const [state, drift, problem] = [stateText(p), driftText(p), problemText(p)];
  // Suspended (fleet suspend): the daemon leaves the project as it is, so drift and health may stay as they are.
  const suspended = p.suspended ? `by ${p.suspended.by} at ${p.suspended.at.replace(/\.\d+Z$/, 'Z')}` : '-';
  return [p.id, state, health, short(p.appliedCommit), drift, suspended, ...(withDatabase(all) ? [databaseText(p) || 'main'] : []), problem];
}

export function renderTable(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()).join('\n');
}

const command: Command = {
  summary: 'Print the fleet: id, state, health, applied commit, drift (desired commit ≠ applied), who suspended it (if anyone), the database server (when not main) and last error.',
  usage: 'fleet status [--registry URL] [--state-dir DIR] [--format text|json]',
  options: { registry: { type: 'string' }, 'state-dir': { type: 'string' }, format: { type: 'string', default: 'text' } },
  async run({ values, repo }) {
    const env = readEnv();
    const stateDir = stateDirFor(repo, env, values['state-dir'] as string | undefined);
    const url = await registryUrlFor(repo, values.registry as string | undefined, env, { stateDir });
    const daemon = await daemonState(stateDir);
    const registry = new Registry(url, createLogger({ level: 'silent' }));
    try {
      let projects: ProjectRecord[];
      try {
        projects = await registry.list();
      } catch (err) {
        const why = daemon.running ? '' : ` (${daemon.line.replace(/: the table above .*$/, '')})`;
        throw new FleetError('POSTGRES_UNREACHABLE', `the registry is unreachable${why}: start the daemon (npm start), or pass --registry URL / FLEET_REGISTRY_URL`, { cause: err });
      }
      if (values.format === 'json') {
        console.log(JSON.stringify(projects.map(({ manifest: _m, ...p }) => p), null, 2));
        if (!daemon.running) console.error(daemon.line);
        return 0;
      }
      const now = new Date();
      console.log(projects.length ? renderTable([statusHeader(projects), ...projects.map((p) => statusLine(p, now, projects))]) : 'no projects registered yet');
      const source = await registry.getState<{ ok: boolean; message?: string; commit?: string; at?: string }>('source');
      if (source && !source.ok) {
        console.log(`\nSourceUnavailable since ${source.at ?? '?'}: converging on ${short(source.commit ?? null)}: ${source.message ?? ''}`);
      }
      const invalid = await registry.getState<{ commit: string; projects: { id: string; issues: string[] }[] }>('invalid');
      if (invalid?.projects.length) {
        console.log(`\ninvalid at ${invalid.commit.slice(0, 7)} (these keep what was last applied, if anything):`);
        for (const p of invalid.projects) console.log(`  ${p.id}: ${p.issues[0]}`);
      }
      console.log(`\n${daemon.line}`);
      return 0;
    } finally {
      await registry.close();
    }
  },
};

export default command;
