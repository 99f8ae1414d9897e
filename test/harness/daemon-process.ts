// `fleet daemon` as a real child process (the CLI through tsx), for tests that kill it with SIGKILL and start it
// again. Its JSON log lines are collected; its HTTP URL is read from the "fleet daemon started" line.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const FLEET_JS = fileURLToPath(new URL('../../scripts/fleet.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface DaemonProcessOptions {
  repoDir: string;
  stateDir: string;
  registryUrl: string;
  adminUrl: string;
  /** Seconds between passes (default 0.3). */
  interval?: number;
}

export interface DaemonProcess {
  child: ChildProcess;
  /** Every stdout/stderr line, in order. */
  lines: string[];
  /** The daemon's HTTP endpoint, once it has logged it. */
  httpUrl(): string | undefined;
  /** Resolves with the exit code or signal once the process is gone. */
  exited: Promise<number | string | null>;
  kill9(): Promise<void>;
}

export function spawnDaemon(o: DaemonProcessOptions): DaemonProcess {
  const args = [
    FLEET_JS, 'daemon', '--repo', o.repoDir, '--state-dir', o.stateDir, '--registry', o.registryUrl,
    '--postgres', o.adminUrl, '--http-port', '0', '--interval', String(o.interval ?? 0.3), '--no-gateway',
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'debug' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    let rest = '';
    stream.on('data', (chunk: Buffer) => {
      const parts = (rest + chunk.toString('utf8')).split('\n');
      rest = parts.pop() ?? '';
      lines.push(...parts.filter(Boolean));
    });
  }
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  return {
    child, lines, exited,
    httpUrl() {
      for (const l of lines) {
        try {
          const rec = JSON.parse(l) as { msg?: string; http?: string };
          if (rec.msg === 'fleet daemon started') return rec.http;
        } catch {
          // not a JSON line
        }
      }
      return undefined;
    },
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
