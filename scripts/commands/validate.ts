// `fleet validate`: check every manifest in the working tree, the cross-project rules and fleet.yaml.
import type { Command } from '../command.ts';
import { FleetError } from '../../daemon/core/errors.ts';
import { readWorktree } from '../../daemon/git/worktree.ts';
import { formatIssue, formatIssueGithub } from '../../daemon/manifest/parse.ts';
import type { ValidationIssue } from '../../daemon/core/types.ts';

const command: Command = {
  summary: 'Validate project manifests, cross-project rules and fleet.yaml in the working tree.',
  usage: 'fleet validate [--format text|github]',
  options: { format: { type: 'string', default: 'text' } },
  async run({ values, repo }) {
    const format = String(values.format);
    if (format !== 'text' && format !== 'github') {
      throw new FleetError('USAGE', `--format must be text or github, not "${format}"`);
    }
    const read = await readWorktree(repo);
    const issues: ValidationIssue[] = [...read.fleetIssues, ...read.invalid.flatMap((p) => p.errors)];
    const render = format === 'github' ? formatIssueGithub : formatIssue;
    for (const issue of issues) console.log(render(issue));
    if (issues.length) {
      const fleet = read.fleetIssues.length ? ', fleet.yaml invalid' : '';
      console.error(`${issues.length} issue(s): ${read.invalid.length} project(s) invalid${fleet}, ` +
        `${read.projects.length} valid; fix the lines above`);
      return 1;
    }
    console.log(`${read.projects.length} projects valid`);
    return 0;
  },
};

export default command;
