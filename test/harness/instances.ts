// Looking at running instances from a test: pids through the process driver's pid files, and the OS processes
// that really run a project's instance (found by their environment, so an orphan no pid file names is counted too).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createProcessDriver } from '../../daemon/drivers/process.ts';
import type { Condition } from '../../daemon/core/types.ts';

/** `pid:<n>` of the project's running instance per its pid file, or undefined when none runs. */
export async function instancePid(stateDir: string, id: string, log: Logger): Promise<string | undefined> {
  const driver = createProcessDriver({ stateDir: join(stateDir, 'instances'), log });
  return (await driver.list()).find((i) => i.id === id && i.running)?.ref;
}

/** Pids of every live process started for `id` by the daemon that uses `stateDir` (Linux /proc). */
export function processesOf(stateDir: string, id: string): number[] {
  const marker = `ATOMO_SCHEMA_PATH=${join(stateDir, 'projects', id, 'schema.ts')}`;
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, 'latin1').split('\0').includes(marker)) pids.push(Number(name));
    } catch {
      // gone meanwhile or not readable: not one of ours
    }
  }
  return pids;
}

/** Stop every instance the daemon that used `stateDir` left running. */
export async function stopInstances(stateDir: string, log: Logger): Promise<void> {
  const driver = createProcessDriver({ stateDir: join(stateDir, 'instances'), log });
  for (const inst of await driver.list()) await driver.stop(inst.id).catch(() => {});
}

export function condition(p: { conditions: Condition[] }, type: Condition['type']): Condition | undefined {
  return p.conditions.find((c) => c.type === type);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function pidNumber(ref: string | undefined): number {
  return Number(ref?.replace(/^pid:/, ''));
}
