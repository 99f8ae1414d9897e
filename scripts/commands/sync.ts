// `fleet sync [--wait]`: the daemon fetches the tracked branch now. With --wait, returns once the pass for the HEAD
// current at the request is done, prints its outcome, and exits 1 when that pass did not converge.
import type { Command } from '../command.ts';
import { FleetError } from '../../daemon/core/errors.ts';
import { connectDaemon, formatOf } from '../daemon-client.ts';

interface Outcome { commit: string | null; ok: boolean; error?: string; looked?: number; message?: string }

const command: Command = {
  summary: 'Fetch the tracked branch now; with --wait, wait for that pass and print its outcome (exit 1 when it failed).',
  usage: 'fleet sync [--wait] [--timeout SECONDS] [--state-dir DIR] [--format text|json]',
  options: { wait: { type: 'boolean' }, timeout: { type: 'string' }, 'state-dir': { type: 'string' }, format: { type: 'string', default: 'text' } },
  async run({ values, positionals, repo }) {
    const format = formatOf(values);
    if (positionals.length) {
      console.error(`fleet sync: takes no arguments\nusage: ${command.usage}`);
      return 2;
    }
    const timeout = values.timeout === undefined ? 120 : Number(values.timeout);
    if (!Number.isInteger(timeout) || timeout < 1 || timeout > 600) throw new FleetError('USAGE', '--timeout must be a whole number of seconds from 1 to 600');
    const client = await connectDaemon(repo, { stateDir: values['state-dir'] as string | undefined });
    const path = values.wait ? `/api/v1/sync?wait=1&timeout=${timeout}` : '/api/v1/sync';
    const r = await client.call<Outcome>('POST', path, undefined, { timeoutMs: (timeout + 10) * 1000 });
    if (format === 'json') console.log(JSON.stringify(r, null, 2));
    else if (!values.wait) console.log(r.message);
    else if (r.ok) console.log(`synced ${r.commit?.slice(0, 7) ?? '-'}: the pass converged${r.looked !== undefined ? ` (${r.looked} project(s) looked at)` : ''}`);
    else console.log(`the pass at ${r.commit?.slice(0, 7) ?? '-'} did not converge: ${r.error ?? 'see fleet status'}`);
    return !values.wait || r.ok ? 0 : 1;
  },
};

export default command;
