// `fleet plan`: what applying the head commit would change, compared to the base commit (or the registry).
import type { Command } from '../fleet.ts';
import { FleetError } from '../../daemon/errors.ts';
import { createCommitReader, resolveRev, schemaHistoryBefore, type FleetRead } from '../../daemon/git/read.ts';
import { formatIssue } from '../../daemon/manifest/parse.ts';
import { actualFromDesired, plan } from '../../daemon/plan.ts';
import { formatPlanMarkdown, formatPlanText } from '../../daemon/plan-format.ts';
import type { Action, ActualProject, DesiredFleet } from '../../daemon/types.ts';
import { readEnv } from '../../daemon/config/env.ts';
import { createLogger, redactUrl } from '../../daemon/log.ts';
import { registryUrlFor } from '../../daemon/postgres/resolve.ts';
import { Registry } from '../../daemon/registry/registry.ts';
import { toActual } from '../../daemon/reconcile.ts';

/** `json` prints the actions themselves, for scripts and tests. */
export type PlanFormat = 'text' | 'markdown' | 'json';

/** Plan `desired` against `actual` and render it: the one call both the commit and registry modes make. */
export function runPlan(
  desired: DesiredFleet, actual: ActualProject[], format: PlanFormat, title?: string,
): { actions: Action[]; output: string } {
  const actions = plan(desired.projects, actual, desired.invalid.map((p) => p.id));
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

/** HEAD (or --head) against what the daemon's registry says is deployed. */
async function planAgainstRegistry(repo: string, values: Record<string, unknown>, format: PlanFormat): Promise<number> {
  const url = await registryUrlFor(repo, values.registry as string | undefined, readEnv());
  const registry = new Registry(url, createLogger({ level: 'silent' }));
  try {
    let records;
    try {
      records = await registry.list();
    } catch (err) {
      throw new FleetError('POSTGRES_UNREACHABLE', `the registry at ${redactUrl(url)} is unreachable: pass --registry URL, or plan two commits with --base`, { cause: err });
    }
    const headSha = await resolveRev(repo, String(values.head));
    const head = await createCommitReader(repo).read(headSha);
    const { output } = runPlan(head, records.map(toActual), format, `Fleet plan: registry → ${short(headSha)}`);
    console.log(output);
    const issues = headIssues(head);
    for (const line of issues) console.error(line);
    return issues.length ? 1 : 0;
  } finally {
    await registry.close();
  }
}

export default command;
