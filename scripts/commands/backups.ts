// `fleet backups <id>` lists a project's backups (time, kind, size, commit), newest first; `--registry` the
// registry's. Read from the backup folder: it needs neither the registry nor the daemon.
import type { Command } from '../command.ts';
import { FleetError } from '../../daemon/core/errors.ts';
import { REGISTRY_FOLDER, listBackups, type BackupInfo } from '../../daemon/backup/layout.ts';
import { renderTable } from './status.ts';
import { cliContext, formatSize } from './backup.ts';

export function backupRows(list: BackupInfo[]): string[][] {
  return list.map((b) => [b.at.replace(/\.\d+Z$/, 'Z'), b.kind, formatSize(b.size), b.commit ? b.commit.slice(0, 7) : '-', b.name]);
}

const command: Command = {
  summary: 'List a project\'s backups (time, kind, size, commit), newest first; --registry lists the registry\'s.',
  usage: 'fleet backups <id> | --registry [--format text|json] [--state-dir DIR]',
  options: { registry: { type: 'boolean' }, 'state-dir': { type: 'string' }, format: { type: 'string', default: 'text' } },
  async run({ values, positionals, repo }) {
    const [id] = positionals;
    if ((!id && !values.registry) || (id && values.registry) || positionals.length > 1) throw new FleetError('USAGE', `usage: ${command.usage}`);
    const ctx = await cliContext(repo, values['state-dir']);
    const list = listBackups(ctx.backupDir, values.registry ? REGISTRY_FOLDER : id);
    if (values.format === 'json') {
      console.log(JSON.stringify(list, null, 2));
      return 0;
    }
    if (!list.length) {
      console.log(`no backups of ${values.registry ? 'the registry' : id} under ${ctx.backupDir}; take one with fleet backup ${values.registry ? '--registry' : id}`);
      return 0;
    }
    console.log(renderTable([['TIME (UTC)', 'KIND', 'SIZE', 'COMMIT', 'FILE'], ...backupRows(list)]));
    const where = list[0].file.slice(0, -list[0].name.length - 1);
    console.log(values.registry
      ? `\nin ${where}; restore one with pg_restore while the daemon is stopped (README: Backups and restore)`
      : `\nin ${where}; restore one with fleet restore ${id} --from FILE, or --latest`);
    return 0;
  },
};

export default command;
