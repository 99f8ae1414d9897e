// For a laptop run (`fleet daemon --dev`): once the fleet is up, print where everything is, once: the dashboard,
// the embedded Postgres (without its password, saying where that is) and each running project's URL. Printed
// again only when the list of running projects changes, never for every pass.
import type { Daemon } from '../daemon/daemon.ts';
import type { FleetConfig } from '../daemon/core/types.ts';
import type { ProjectRecord } from '../daemon/registry/registry.ts';

export interface DevEndpoints {
  dashboardUrl: string;
  /** The Postgres admin URL without its password, and where the password is. */
  postgres?: { url: string; note: string };
}

/** A connection URL with no password at all (not even `***`): safe to copy into a terminal or a bug report. */
export function withoutPassword(url: string): string {
  const u = new URL(url);
  u.password = '';
  return u.toString();
}

/** Whether the first look at the fleet is over: a pass ran and nothing that should run is still on its way. */
export function fleetUp(rows: ProjectRecord[], passed: boolean): boolean {
  return passed && rows.every((r) => !r.present || r.desiredState !== 'running' || r.status === 'running' || r.status === 'failed');
}

export function projectLines(rows: ProjectRecord[], port: string): string[] {
  return rows
    .filter((r) => r.status === 'running' && r.hostname && r.manifest)
    .map((r) => `  ${r.id.padEnd(16)} http://${r.hostname}:${port}/   (direct: http://${r.upstream}/)`);
}

export function renderEndpoints(e: DevEndpoints, projects: string[], first: boolean): string {
  const out: string[] = [];
  if (first) {
    out.push('', 'fleet is up:', `  ${'dashboard'.padEnd(16)} ${e.dashboardUrl}/   (log in with the operator token)`);
    if (e.postgres) out.push(`  ${'postgres'.padEnd(16)} ${e.postgres.url}   (${e.postgres.note})`);
  }
  out.push(projects.length ? `running projects:\n${projects.join('\n')}` : 'running projects: none yet (add a folder under projects/ and commit it)');
  return out.join('\n');
}

export function printUrlsOnChange(daemon: Daemon, fleet: FleetConfig, endpoints: DevEndpoints): () => void {
  const port = fleet.gateway.listen.split(':').pop() ?? '80';
  let last: string | null = null;
  const timer = setInterval(async () => {
    const rows = await daemon.registry.list().catch(() => null);
    if (!rows || !fleetUp(rows, daemon.last.commit !== null)) return;
    const lines = projectLines(rows, port);
    const text = lines.join('\n');
    if (text === last) return;
    console.log(renderEndpoints(endpoints, lines, last === null));
    last = text;
  }, 1000);
  timer.unref();
  return () => clearInterval(timer);
}
