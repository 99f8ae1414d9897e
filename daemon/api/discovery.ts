// `<stateDir>/daemon.json`: how a CLI on the same machine finds the running daemon's HTTP endpoint. Written (0600)
// when the endpoint listens, removed on a clean stop; a daemon killed hard leaves it behind, so readers check that
// the daemon answers (/healthz) before they trust it.
import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DAEMON_FILE = 'daemon.json';

export interface DaemonInfo {
  url: string;
  pid: number;
  startedAt: string;
}

export function daemonInfoPath(stateDir: string): string {
  return join(stateDir, DAEMON_FILE);
}

export function writeDaemonInfo(stateDir: string, info: DaemonInfo): void {
  const path = daemonInfoPath(stateDir);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(info) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** The file as written, or null when there is none (or it is not one this code wrote). */
export function readDaemonInfo(stateDir: string): DaemonInfo | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(daemonInfoPath(stateDir), 'utf8'));
  } catch {
    return null;
  }
  const i = parsed as Partial<DaemonInfo>;
  if (typeof i?.url !== 'string' || !/^https?:\/\//.test(i.url) || typeof i.pid !== 'number' || typeof i.startedAt !== 'string') return null;
  return { url: i.url, pid: i.pid, startedAt: i.startedAt };
}

/** Remove the file when it still names this process (a newer daemon on the same state dir keeps its own). */
export function removeDaemonInfo(stateDir: string, pid = process.pid): void {
  if (readDaemonInfo(stateDir)?.pid === pid) rmSync(daemonInfoPath(stateDir), { force: true });
}
