// `fleet plan`: what applying the head commit would change, compared to the base commit (or the registry).
import type { Command } from '../fleet.ts';
import { FleetError } from '../../daemon/errors.ts';
import { createCommitReader, resolveRev, schemaHistoryBefore, type FleetRead } from '../../daemon/git/read.ts';
import { formatIssue } from '../../daemon/manifest/parse.ts';
import { actualFromDesired, plan } from '../../daemon/plan.ts';
import { formatPlanMarkdown, formatPlanText } from '../../daemon/plan-format.ts';
import type { Action, ActualProject, DesiredFleet } from '../../daemon/types.ts';

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
  usage: 'fleet plan --base <rev> [--head <rev>] [--format text|markdown|json] [--against-registry]',
  options: {
    base: { type: 'string' },
    head: { type: 'string', default: 'HEAD' },
    format: { type: 'string', default: 'text' },
    'against-registry': { type: 'boolean', default: false },
  },
  async run({ values, repo }) {
    const format = String(values.format);
    if (format !== 'text' && format !== 'markdown' && format !== 'json') {
      throw new FleetError('USAGE', `--format must be text, markdown or json, not "${format}"`);
    }
    if (values['against-registry']) {
      console.error('fleet plan --against-registry: not available yet; use --base <rev> to compare two commits');
      return 2;
    }
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

export default command;
