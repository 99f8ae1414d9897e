// The `fleet` CLI: one file per command under scripts/commands/, registered in an explicit map.
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Command } from './command.ts';
import { SUMMARIES } from './command-summaries.ts';
import { debugEnabled } from '../daemon/config/env.ts';
import { FleetError, describe } from '../daemon/core/errors.ts';


export const commands: Record<string, () => Promise<{ default: Command }>> = {
  validate: () => import('./commands/validate.ts'),
  plan: () => import('./commands/plan.ts'),
  new: () => import('./commands/new.ts'),
  daemon: () => import('./commands/daemon.ts'),
  status: () => import('./commands/status.ts'),
  secrets: () => import('./commands/secrets.ts'),
  events: () => import('./commands/events.ts'),
  logs: () => import('./commands/logs.ts'),
  backup: () => import('./commands/backup.ts'),
  backups: () => import('./commands/backups.ts'),
  restore: () => import('./commands/restore.ts'),
  sync: () => import('./commands/sync.ts'),
  restart: () => import('./commands/restart.ts'),
  suspend: () => import('./commands/suspend.ts'),
  resume: () => import('./commands/resume.ts'),
};

function help(): string {
  return [
    'usage: fleet <command> [--repo DIR] [options]',
    '',
    'commands:',
    // Summaries from a static table: help stays fast (no command module is loaded).
    ...Object.keys(commands).map((c, _i, all) => `  ${c.padEnd(Math.max(...all.map((n) => n.length)))}  ${SUMMARIES[c] ?? ''}`.trimEnd()),
    '',
    'Run `fleet <command> --help` for a command\'s options.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    console.error(`fleet: unknown command "${name}"; known: ${Object.keys(commands).join(', ')}`);
    return 2;
  }
  const cmd = (await load()).default;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...cmd.options, repo: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    console.error(`fleet ${name}: ${describe(err)}\nusage: ${cmd.usage}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(`${cmd.summary}\nusage: ${cmd.usage}`);
    return 0;
  }
  const repo = typeof parsed.values.repo === 'string' ? parsed.values.repo : process.cwd();
  try {
    return await cmd.run({ values: parsed.values, positionals: parsed.positionals, repo });
  } catch (err) {
    // A user sees a sentence, never a stack trace; FLEET_DEBUG=1 shows the cause chain.
    const code = err instanceof FleetError ? ` [${err.code}]` : '';
    console.error(`fleet ${name}: ${describe(err)}${code}`);
    if (debugEnabled()) console.error(err);
    return 1;
  }
}

/** Run the CLI on this process's arguments and set its exit code; never throws. */
export function runCli(): void {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err) => { console.error(`fleet: ${describe(err)}`); process.exitCode = 1; },
  );
}

// `tsx scripts/fleet.ts` (npm start) runs it directly; scripts/fleet.js calls runCli(); an import runs nothing.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) runCli();
