// `fleet plan`: what applying the head commit would change, compared to the base commit (or the registry).
import type { Command } from '../command.ts';
import { FleetError } from '../../daemon/core/errors.ts';
import { createCommitReader, resolveRev, schemaHistoryBefore, type FleetRead } from '../../daemon/git/read.ts';
import { formatIssue } from '../../daemon/manifest/parse.ts';
import { actualFromDesired, planFleet } from '../../daemon/core/plan.ts';
import { restoreRequests } from '../../daemon/backup/requests.ts';
import { formatPlanMarkdown, formatPlanText } from '../plan-format.ts';
import type { Action, ActualProject, DesiredFleet, DriverLayout, PlanInput } from '../../daemon/core/types.ts';
import { readEnv } from '../../daemon/config/env.ts';
import { createLogger, redactUrl } from '../../daemon/log.ts';
import { registryUrlFor } from '../../daemon/postgres/resolve.ts';
import { Registry } from '../../daemon/registry/registry.ts';
import { toActual } from '../../daemon/registry/registry.ts';
import { driverLayout } from '../../daemon/drivers/index.ts';

/** `json` prints the actions themselves, for scripts and tests. */
export type PlanFormat = 'text' | 'markdown' | 'json';

/**
 * Plan `desired` against `actual` and render it: the one call both the commit and registry modes make, and the
 * daemon's own plan function (instances assumed to match the registry, no backoff pending). `driver` names the
 * instance driver, so a changed instance spec shows as a restart.
 */
export function runPlan(
  desired: DesiredFleet, actual: ActualProject[], format: PlanFormat, title?: string, driver?: DriverLayout, restores?: PlanInput['restores'],
): { actions: Action[]; output: string } {
  const actions = planFleet({ desired: desired.projects, actual, invalid: desired.invalid.map((p) => p.id), driver, restores });
  const output = format === 'markdown'
    ? formatPlanMarkdown(actions, { title, invalid: desired.invalid })
    : format === 'json' ? JSON.stringify(actions, null, 2) : formatPlanText(actions);
  return { actions, output };
}

function short(sha: string): string {
  return sha.slice(0, 7);
}

/** Issues that make the head commit not fully applicable, printed after the plan. */
function headIssues(head: FleetRead): string[] {
  return [...head.fleetIssues, ...head.invalid.flatMap((p) => p.errors)].map(formatIssue);
}

const command: Command = {
  summary: 'Show what applying a commit would change, compared to a base commit.',
  usage: 'fleet plan --base <rev> [--head <rev>] [--format text|markdown|json] | fleet plan --against-registry [--head <rev>] [--registry URL]',
  options: {
    base: { type: 'string' },
    head: { type: 'string', default: 'HEAD' },
    format: { type: 'string', default: 'text' },
    'against-registry': { type: 'boolean', default: false },
    registry: { type: 'string' },
  },
  async run({ values, repo }) {
    const format = String(values.format);
    if (format !== 'text' && format !== 'markdown' && format !== 'json') {
      throw new FleetError('USAGE', `--format must be text, markdown or json, not "${format}"`);
    }
    if (values['against-registry']) return planAgainstRegistry(repo, values, format as PlanFormat);
    if (typeof values.base !== 'string') {
      console.error(`fleet plan: --base <rev> is required (a branch, tag or commit)\nusage: ${command.usage}`);
      return 2;
    }
    const baseSha = await resolveRev(repo, values.base);
    const headSha = await resolveRev(repo, String(values.head));
    const reader = createCommitReader(repo);
    // History first: the reader keeps its cache for the last reads, which are then base and head.
    const history = await schemaHistoryBefore(repo, reader, baseSha);
    const base = await reader.read(baseSha);
    const head = await reader.read(headSha);
    const title = `Fleet plan: ${short(baseSha)} → ${short(headSha)}`;
    const { output } = runPlan(head, actualFromDesired(base.projects, history), format as PlanFormat, title);
    console.log(output);
    const issues = headIssues(head);
    if (issues.length) {
      console.error(`\n${issues.length} issue(s) at ${short(headSha)}; invalid projects keep what was last applied:`);
      for (const line of issues) console.error(line);
      return 1;
    }
    return 0;
  },
};

/**
 * The plan `fleet plan --against-registry` prints: `headRev` against the registry's rows, by the daemon's own
 * plan function. Exported so tests can compare it with what a daemon pass then records.
 */
export async function registryPlan(repo: string, registry: Registry, headRev: string, format: PlanFormat): Promise<{ actions: Action[]; output: string; issues: string[] }> {
  const records = await registry.list();
  const headSha = await resolveRev(repo, headRev);
  const head = await createCommitReader(repo).read(headSha);
  // Operators' restore requests are part of the daemon's next plan, so of this preview too.
  const restores = restoreRequests(await registry.openRequests());
  const planned = runPlan(head, records.map(toActual), format, `Fleet plan: registry → ${short(headSha)}`, driverLayout(head.fleet?.driver ?? 'process', { network: head.fleet?.docker?.network }), restores);
  return { ...planned, issues: headIssues(head) };
}

/** HEAD (or --head) against what the daemon's registry says is deployed. */
async function planAgainstRegistry(repo: string, values: Record<string, unknown>, format: PlanFormat): Promise<number> {
  const url = await registryUrlFor(repo, values.registry as string | undefined, readEnv());
  const registry = new Registry(url, createLogger({ level: 'silent' }));
  try {
    try {
      await registry.list();
    } catch (err) {
      throw new FleetError('POSTGRES_UNREACHABLE', `the registry at ${redactUrl(url)} is unreachable: pass --registry URL, or plan two commits with --base`, { cause: err });
    }
    const { output, issues } = await registryPlan(repo, registry, String(values.head), format);
    console.log(output);
    for (const line of issues) console.error(line);
    return issues.length ? 1 : 0;
  } finally {
    await registry.close();
  }
}

export default command;
