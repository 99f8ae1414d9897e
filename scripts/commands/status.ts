// `fleet status`: the fleet as the registry sees it: state, health, applied commit, drift and last error.
import type { Command } from '../command.ts';
import { readEnv } from '../../daemon/config/env.ts';
import { createLogger } from '../../daemon/log.ts';
import { FleetError } from '../../daemon/core/errors.ts';
import { registryUrlFor } from '../../daemon/postgres/resolve.ts';
import { Registry, type ProjectRecord } from '../../daemon/registry/registry.ts';

const short = (c: string | null) => (c ? c.slice(0, 7) : '-');

export function statusLine(p: ProjectRecord): string[] {
  const health = p.lastHealth ? (p.lastHealth.ok ? 'healthy' : `unhealthy (${p.lastHealth.status ?? p.lastHealth.error})`) : '-';
  const state = p.present ? (p.desiredState === p.status || p.status === 'deleted' ? p.status : `${p.status}→${p.desiredState}`) : `${p.status} (folder removed)`;
  // Drift is git asking for something not applied yet: a deleted project, or a removed folder whose instance is
  // stopped, has nothing pending whatever commit it was last seen at.
  const settled = p.status === 'deleted' || (!p.present && p.status === 'stopped');
  const drift = !settled && p.observedCommit && p.appliedCommit !== p.observedCommit ? `yes (${short(p.observedCommit)})` : 'no';
  const problem = p.conditions.find((c) => (c.type === 'Invalid' && c.status) || (c.type === 'Stalled' && c.status) || (c.type === 'Reconciling' && !c.status));
  return [p.id, state, health, short(p.appliedCommit), drift, problem ? `${problem.reason}: ${problem.message}` : (p.lastError ?? '')];
}

export function renderTable(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()).join('\n');
}

const command: Command = {
  summary: 'Print the fleet: id, state, health, applied commit, drift (desired commit ≠ applied) and last error.',
  usage: 'fleet status [--registry URL] [--format text|json]',
  options: { registry: { type: 'string' }, format: { type: 'string', default: 'text' } },
  async run({ values, repo }) {
    const url = await registryUrlFor(repo, values.registry as string | undefined, readEnv());
    const registry = new Registry(url, createLogger({ level: 'silent' }));
    try {
      let projects: ProjectRecord[];
      try {
        projects = await registry.list();
      } catch (err) {
        throw new FleetError('POSTGRES_UNREACHABLE', 'the registry is unreachable: is the daemon running (npm start)? Or pass --registry URL / FLEET_REGISTRY_URL', { cause: err });
      }
      if (values.format === 'json') {
        console.log(JSON.stringify(projects.map(({ manifest: _m, ...p }) => p), null, 2));
        return 0;
      }
      const header = ['ID', 'STATE', 'HEALTH', 'APPLIED', 'DRIFT', 'LAST ERROR'];
      console.log(projects.length ? renderTable([header, ...projects.map(statusLine)]) : 'no projects registered yet');
      const source = await registry.getState<{ ok: boolean; message?: string; commit?: string; at?: string }>('source');
      if (source && !source.ok) {
        console.log(`\nSourceUnavailable since ${source.at ?? '?'}: converging on ${short(source.commit ?? null)}: ${source.message ?? ''}`);
      }
      const invalid = await registry.getState<{ commit: string; projects: { id: string; issues: string[] }[] }>('invalid');
      if (invalid?.projects.length) {
        console.log(`\ninvalid at ${invalid.commit.slice(0, 7)} (these keep what was last applied, if anything):`);
        for (const p of invalid.projects) console.log(`  ${p.id}: ${p.issues[0]}`);
      }
      return 0;
    } finally {
      await registry.close();
    }
  },
};

export default command;
