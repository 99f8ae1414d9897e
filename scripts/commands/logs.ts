// `fleet logs <id> [-f]`: the instance's output through the fleet's driver (the process driver's log file, the
// docker driver's container log, the swarm driver's service log), the last lines, then with -f each new one until Ctrl-C.
import { join, resolve } from 'node:path';
import type { Command } from '../command.ts';
import { readEnv } from '../../daemon/config/env.ts';
import { FleetError } from '../../daemon/core/errors.ts';
import { createDriver } from '../../daemon/drivers/index.ts';
import { createLogger } from '../../daemon/log.ts';
import { loadFleetConfig } from '../../daemon/manifest/fleet-config.ts';
import { stateDirFor } from '../../daemon/postgres/resolve.ts';

const PROJECT_ID = /^[a-z][a-z0-9_]{0,39}$/;
const usage = 'fleet logs <project> [-f|--follow] [--lines N] [--state-dir DIR] [--format text|json]';

function usageError(message: string): number {
  console.error(`fleet logs: ${message}\nusage: ${usage}`);
  return 2;
}

const command: Command = {
  summary: 'Print a project\'s instance log (its last lines; -f follows it until Ctrl-C).',
  usage,
  options: {
    follow: { type: 'boolean', short: 'f' }, lines: { type: 'string', default: '100' }, 'state-dir': { type: 'string' },
    format: { type: 'string', default: 'text' },
  },
  async run({ values, positionals, repo }) {
    const [id, ...extra] = positionals;
    if (!id || extra.length) return usageError('name one project');
    // The id names a folder on disk: only a project id, never a path.
    if (!PROJECT_ID.test(id)) return usageError(`"${id}" is not a project id (lower case letters, digits and _, starting with a letter)`);
    const lines = Number(values.lines);
    if (!Number.isInteger(lines) || lines < 0 || lines > 100_000) return usageError(`--lines takes a whole number from 0 to 100000, not "${values.lines}"`);
    const format = String(values.format);
    if (format !== 'text' && format !== 'json') return usageError(`--format must be text or json, not "${format}"`);
    const repoDir = resolve(repo);
    const fleet = await loadFleetConfig(join(repoDir, 'fleet.yaml'), { repoDir });
    const stateDir = stateDirFor(repoDir, readEnv(), values['state-dir'] as string | undefined);
    const driver = await createDriver(fleet.driver, {
      stateDir: join(stateDir, 'instances'), log: createLogger({ level: 'silent' }), network: fleet.docker?.network, socketPath: fleet.docker?.socketPath, swarm: fleet.swarm,
    });
    if (!driver.logs) throw new FleetError('DRIVER', `the ${driver.name} driver cannot read instance logs`);
    const ac = new AbortController();
    const stop = () => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let printed = 0;
    try {
      for await (const line of driver.logs(id, { lines, follow: values.follow === true, signal: ac.signal })) {
        printed++;
        console.log(format === 'json' ? JSON.stringify({ project: id, line }) : line);
      }
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      await driver.close?.();
    }
    if (!printed && !values.follow && lines > 0) {
      throw new FleetError('USAGE', `no instance log for ${id} (yet): \`fleet status\` lists the fleet's projects; a project logs once its instance starts`);
    }
    return 0;
  },
};

export default command;
