// `fleet --help` lists every command with its one-line summary, from a static table (help must not load every
// command module); this test keeps the table equal to the modules' own `summary`.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { commands } from '../scripts/fleet.ts';
import { SUMMARIES } from '../scripts/command-summaries.ts';

const FLEET = fileURLToPath(new URL('../scripts/fleet.js', import.meta.url));

function run(...args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((done) => execFile(process.execPath, [FLEET, ...args], (err, stdout) => done({ code: err ? Number(err.code) : 0, stdout })));
}

describe('fleet --help', () => {
  it.each(Object.keys(commands))('the table holds the summary of `%s` as its module says it', async (name) => {
    const mod = await commands[name]();
    expect(SUMMARIES[name]).toBe(mod.default.summary);
    expect(mod.default.summary).not.toContain('\n');
  });

  it('has no summary for a command that does not exist', () => {
    expect(Object.keys(SUMMARIES).filter((n) => !(n in commands))).toEqual([]);
  });

  it('prints each command with its summary, aligned, and exits 0', async () => {
    const { code, stdout } = await run('--help');
    expect(code).toBe(0);
    for (const name of Object.keys(commands)) {
      expect(stdout).toMatch(new RegExp(`^  ${name} +${SUMMARIES[name].slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'));
    }
    const starts = stdout.split('\n').filter((l) => /^ {2}\S/.test(l)).map((l) => l.search(/(?<=^ {2}\S+ +)\S/));
    expect(new Set(starts).size).toBe(1);
  });
});
