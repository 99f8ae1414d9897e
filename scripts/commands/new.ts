// `fleet new <id>`: scaffold a project folder that passes `fleet validate` as written.
import { reservedIdProblem } from '../../daemon/manifest/rules.ts';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from '../command.ts';
import { FleetError } from '../../daemon/core/errors.ts';
import { readWorktree } from '../../daemon/git/worktree.ts';

const ID = /^[a-z][a-z0-9_]{0,39}$/;
const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export function manifestText(id: string, hostname: string): string {
  return [
    '# yaml-language-server: $schema=../../schemas/project.schema.json',
    `id: ${id}`,
    `displayName: ${id}`,
    `hostname: ${hostname}`,
    'state: running',
    'schema: schema.ts',
    '# Non-secret settings; secrets go under `secrets:` as references (fleet secrets set).',
    'env:',
    '  ATOMO_ENV: production',
    'secrets: {}',
    'resources:',
    '  memory: 256m',
    '',
  ].join('\n');
}

export const SCHEMA_TEXT = '// The atomo schema of this project: each exported interface is a model.\n' +
  'export interface Widget { id: string; name: string; }\n';

const command: Command = {
  summary: 'Create projects/<id>/ with a project.yaml and a schema.ts.',
  usage: 'fleet new <id> [--hostname HOST]',
  options: { hostname: { type: 'string' } },
  async run({ values, positionals, repo }) {
    const [id, ...extra] = positionals;
    if (!id || extra.length) throw new FleetError('USAGE', `give exactly one project id\nusage: ${command.usage}`);
    if (!ID.test(id)) {
      throw new FleetError('USAGE', `"${id}" is not a valid project id: use a lower-case letter, then letters, ` +
        'digits or _ (at most 40 characters); it becomes the database name');
    }
    const reserved = reservedIdProblem(id);
    if (reserved) throw new FleetError('USAGE', reserved);
    const hostname = typeof values.hostname === 'string' ? values.hostname : `${id.replace(/_/g, '-')}.localhost`;
    if (!HOSTNAME.test(hostname)) {
      throw new FleetError('USAGE', `"${hostname}" is not a valid hostname: use a lower-case DNS name such as acme.example.com`);
    }
    const folder = join(repo, 'projects', id);
    if (existsSync(folder)) throw new FleetError('USAGE', `projects/${id} already exists; choose another id`);
    const fleet = await readWorktree(repo);
    const taken = fleet.projects.find((p) => p.manifest.hostname === hostname || p.manifest.aliases.includes(hostname));
    if (taken) throw new FleetError('USAGE', `hostname ${hostname} is already used by project ${taken.id}; pass --hostname`);
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'project.yaml'), manifestText(id, hostname));
    await writeFile(join(folder, 'schema.ts'), SCHEMA_TEXT);
    console.log(`created projects/${id}/project.yaml and projects/${id}/schema.ts (hostname ${hostname})`);
    console.log('next: edit schema.ts, run `fleet validate`, commit and open a pull request');
    return 0;
  },
};

export default command;
