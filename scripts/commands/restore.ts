// `fleet restore <id> --latest | --from FILE [--yes]`: ask the running daemon to restore a project's database (it
// owns the instance: it stops it, restores into a fresh database, swaps it in and starts it again), then wait for
// the outcome. Asks for confirmation unless --yes; without a terminal to ask, --yes is required.
import type { Command } from '../command.ts';
import { createInterface } from 'node:readline/promises';
import { basename, resolve } from 'node:path';
import { statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { FleetError } from '../../daemon/core/errors.ts';
import { latestBackup, parseBackupName } from '../../daemon/backup/layout.ts';
import { requestRestore, waitForRequest, type RestoreOutcome } from '../../daemon/backup/requests.ts';
import { cliContext, formatSize, openRegistry, progressPrinter } from './backup.ts';

async function confirm(id: string, file: string): Promise<boolean> {
  const parsed = parseBackupName(basename(file));
  const what = `${basename(file)} (${parsed ? `${parsed.kind}, ${parsed.at}, ` : ''}${formatSize(statSync(file).size)})`;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    process.stderr.write(`This stops ${id}, replaces its database atomo_${id} with ${what} and starts it again.\n`
      + 'The current database is dumped first (kind pre-restore), so this can be undone with fleet restore --from.\n');
    return (await rl.question(`Type the project id (${id}) to confirm: `)).trim() === id;
  } finally {
    rl.close();
  }
}

const command: Command = {
  summary: 'Restore a project\'s database from a backup: the daemon stops the instance, swaps the restored database in and starts it.',
  usage: 'fleet restore <id> --latest | --from FILE [--yes] [--format text|json] [--registry URL] [--state-dir DIR]',
  options: {
    latest: { type: 'boolean' }, from: { type: 'string' }, yes: { type: 'boolean', short: 'y' },
    registry: { type: 'string' }, 'state-dir': { type: 'string' }, format: { type: 'string', default: 'text' },
  },
  async run({ values, positionals, repo }) {
    const [id] = positionals;
    if (!id || positionals.length > 1) throw new FleetError('USAGE', `usage: ${command.usage}`);
    if (!values.latest === !values.from) throw new FleetError('USAGE', `say which backup: --latest or --from FILE (fleet backups ${id} lists them)`);
    const ctx = await cliContext(repo, values['state-dir']);
    const registry = await openRegistry(ctx, values.registry);
    try {
      // The daemon carries the restore out: without it, nothing is asked and nothing is left behind.
      if (!(await registry.daemonRunning())) {
        throw new FleetError('DAEMON_UNREACHABLE', 'the daemon is not running (no daemon holds the reconcile lock on this registry): start it with npm start or fleet daemon, then run this again; nothing was changed');
      }
      const file = values.from ? resolve(String(values.from)) : latestBackup(ctx.backupDir, id)?.file;
      if (!file) throw new FleetError('USAGE', `no backups of ${id} under ${ctx.backupDir}: take one with fleet backup ${id}`);
      if (!values.yes) {
        if (!process.stdin.isTTY) throw new FleetError('USAGE', 'refusing to restore without confirmation: there is no terminal to ask; pass --yes');
        if (!(await confirm(id, file))) {
          console.error('not confirmed; nothing was changed');
          return 1;
        }
      }
      const { request, backup } = await requestRestore(registry, ctx.backupDir, id, { from: file }, userInfo().username);
      process.stderr.write(`restore of ${id} from ${backup} requested (request ${request.id}); waiting for the daemon…\n`);
      const abort = new AbortController();
      const onSigint = () => abort.abort();
      process.once('SIGINT', onSigint);
      let done;
      try {
        done = await waitForRequest(registry, request.id, { signal: abort.signal, onProgress: progressPrinter(id) as (p: Record<string, unknown>) => void });
      } finally {
        process.removeListener('SIGINT', onSigint);
      }
      const outcome = done.outcome as unknown as RestoreOutcome;
      if (values.format === 'json') console.log(JSON.stringify({ request: done.id, ...outcome }, null, 2));
      else if (outcome.ok) console.log(`${outcome.message}; ${outcome.started ? `${id} is running again` : `${id} is not running (its state says so)`}`);
      else console.error(`restore of ${id} failed: ${outcome.message}`);
      return outcome.ok ? 0 : 1;
    } finally {
      await registry.close();
    }
  },
};

export default command;
