// What every `fleet` subcommand exports: kept apart from scripts/fleet.ts so commands never import the entry point.
import type { ParseArgsConfig } from 'node:util';

export interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** Returns the process exit code. */
  run(args: { values: Record<string, unknown>; positionals: string[]; repo: string }): Promise<number>;
}
