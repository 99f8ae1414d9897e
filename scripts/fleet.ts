// The `fleet` CLI: one file per command under scripts/commands/, registered in an explicit map.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { debugEnabled } from '../daemon/config/env.ts';
import { FleetError, describe } from '../daemon/errors.ts';

export interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** Returns the process exit code. */
  run(args: { values: Record<string, unknown>; positionals: string[]; repo: string }): Promise<number>;
}

const commands: Record<string, () => Promise<{ default: Command }>> = {
  validate: () => import('./commands/validate.ts'),
  plan: () => import('./commands/plan.ts'),
  new: () => import('./commands/new.ts'),
  daemon: () => import('./commands/daemon.ts'),
  status: () => import('./commands/status.ts'),
  secrets: () => import('./commands/secrets.ts'),
};

function help(): string {
  return [
    'usage: fleet <command> [--repo DIR] [options]',
    '',
    'commands:',
    ...Object.keys(commands).map((c) => `  ${c}`),
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

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(`fleet: ${describe(err)}`); process.exitCode = 1; },
);
