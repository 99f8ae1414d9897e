// Whether this repository's daemon runs, for `fleet status`: its `<stateDir>/daemon.json`, that pid alive, and
// /healthz answering. A registry row keeps what a stopped daemon last recorded, so status must say when nobody
// is updating it.
import { readDaemonInfo, daemonInfoPath } from '../daemon/api/discovery.ts';
import { ago } from '../daemon/dashboard/age.ts';

export interface DaemonState {
  running: boolean;
  line: string;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

export async function daemonState(stateDir: string, now = new Date()): Promise<DaemonState> {
  const file = daemonInfoPath(stateDir);
  const hint = 'the table above is what it last recorded; start it with npm start (or fleet daemon)';
  const info = readDaemonInfo(stateDir);
  if (!info) return { running: false, line: `daemon: NOT RUNNING (no ${file}): ${hint}` };
  if (!pidAlive(info.pid)) return { running: false, line: `daemon: NOT RUNNING (pid ${info.pid} named by ${file} is gone): ${hint}` };
  const ok = await fetch(`${info.url}/healthz`, { signal: AbortSignal.timeout(3000) }).then((r) => r.ok, () => false);
  if (!ok) return { running: false, line: `daemon: NOT ANSWERING at ${info.url} (pid ${info.pid}): ${hint}` };
  return { running: true, line: `daemon: running at ${info.url} (pid ${info.pid}, up ${ago(info.startedAt, now).replace(/ ago$/, '')})` };
}
