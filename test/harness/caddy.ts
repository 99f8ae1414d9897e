// A real Caddy for tests: `caddy run` with a bootstrap config that only opens the admin API on loopback.
// Its data and config folders live in a temp dir, so nothing is written to the home directory.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';

export interface TestCaddy {
  /** `http://127.0.0.1:<adminPort>` */
  adminUrl: string;
  /** `127.0.0.1:<adminPort>`, the value for `gateway.admin`. */
  adminListen: string;
  /** A free port reserved for the HTTP server a test config listens on. */
  httpPort: number;
  /** Everything Caddy printed since it (re)started: its JSON log lines, e.g. admin API requests. */
  logs(): string;
  /** Graceful stop (SIGTERM) and cleanup of the temp dir. Safe to call twice. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would; the temp dir stays so `restart()` can reuse it. */
  kill(): Promise<void>;
  /** Start again with the bootstrap config only (an empty Caddy, as after a crash). */
  restart(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;

export function caddyAvailable(): boolean {
  return spawnSync('caddy', ['version'], { stdio: 'ignore' }).status === 0;
}

export async function startCaddy(opts: { adminPort?: number; httpPort?: number } = {}): Promise<TestCaddy> {
  if (!caddyAvailable()) throw new Error('caddy not found on PATH: apt-get install caddy');
  const adminPort = opts.adminPort ?? (await freePort());
  const httpPort = opts.httpPort ?? (await freePort());
  const root = mkdtempSync(join(tmpdir(), 'fleet-caddy-'));
  const adminListen = `127.0.0.1:${adminPort}`;
  const adminUrl = `http://${adminListen}`;
  const configFile = join(root, 'bootstrap.json');
  writeFileSync(configFile, JSON.stringify({ admin: { listen: adminListen, config: { persist: false } } }));

  let child: ChildProcess | null = null;
  let output = '';
  let logs = '';

  async function launch(): Promise<void> {
    output = '';
    logs = '';
    const proc = spawn('caddy', ['run', '--config', configFile], {
      env: { ...process.env, XDG_DATA_HOME: join(root, 'data'), XDG_CONFIG_HOME: join(root, 'config'), HOME: root },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stdout?.on('data', (d) => (output = (output + d).slice(-4000)));
    proc.stderr?.on('data', (d) => {
      output = (output + d).slice(-4000);
      logs += d;
    });
    await waitForAdmin(adminUrl, proc, () => output);
  }

  async function signal(sig: NodeJS.Signals): Promise<void> {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((done) => proc.once('exit', () => done()));
    proc.kill(sig);
    await exited;
  }

  await launch();
  return {
    adminUrl,
    adminListen,
    httpPort,
    logs: () => logs,
    async stop() {
      await signal('SIGTERM');
      rmSync(root, { recursive: true, force: true });
    },
    kill: () => signal('SIGKILL'),
    async restart() {
      await signal('SIGTERM');
      await launch();
    },
  };
}

async function waitForAdmin(adminUrl: string, proc: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`caddy exited with code ${proc.exitCode} at start:\n${output()}`);
    try {
      const res = await fetch(`${adminUrl}/config/`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  proc.kill('SIGKILL');
  throw new Error(`caddy admin API at ${adminUrl} did not answer within ${READY_TIMEOUT_MS} ms:\n${output()}`);
}

/**
 * GET a JSON document from Caddy's admin API on a fresh connection: Caddy restarts its admin server on every
 * load, so a kept-alive connection (global fetch pools them) can be closed under the request.
 */
export function adminGet<T = any>(adminUrl: string, path: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${adminUrl}${path}`, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T);
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
  });
}
