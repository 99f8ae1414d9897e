// A real Caddy for tests: `caddy run` with a bootstrap config that only opens the admin API, on loopback or on a
// unix socket. Its data and config folders live in a temp dir, so nothing is written to the home directory.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';

export interface TestCaddy {
  /** `http://127.0.0.1:<adminPort>`, or `unix:///<dir>/admin.sock` with `adminSocket`: the value for `gateway.admin`. */
  adminUrl: string;
  /** Caddy's own spelling of the admin address: `127.0.0.1:<adminPort>` or `unix//<dir>/admin.sock`. */
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

/** `adminSocket`: the admin API listens on a unix socket in the temp dir instead of a loopback port. */
export async function startCaddy(opts: { adminPort?: number; httpPort?: number; adminSocket?: boolean } = {}): Promise<TestCaddy> {
  if (!caddyAvailable()) throw new Error('caddy not found on PATH: apt-get install caddy');
  const httpPort = opts.httpPort ?? (await freePort());
  const root = mkdtempSync(join(tmpdir(), 'fleet-caddy-'));
  let adminListen: string;
  let adminUrl: string;
  if (opts.adminSocket) {
    adminListen = `unix/${join(root, 'admin.sock')}`;
    adminUrl = `unix://${join(root, 'admin.sock')}`;
  } else {
    adminListen = `127.0.0.1:${opts.adminPort ?? (await freePort())}`;
    adminUrl = `http://${adminListen}`;
  }
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
      if ((await adminRequest(adminUrl, 'GET', '/config/')).status === 200) return;
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
export async function adminGet<T = any>(adminUrl: string, path: string): Promise<T> {
  return JSON.parse((await adminRequest(adminUrl, 'GET', path)).text) as T;
}

/**
 * One request to the admin API at an `http://` or `unix://` URL. On a socket Caddy accepts only an empty Host
 * header (node would send `localhost`), so the header is set by hand.
 */
export function adminRequest(adminUrl: string, method: string, path: string, body?: string): Promise<{ status: number; text: string }> {
  const target: http.RequestOptions = adminUrl.startsWith('unix:')
    ? { socketPath: adminUrl.slice('unix:'.length).replace(/^\/+/, '/'), path, headers: { Host: '' }, setHost: false }
    : { host: new URL(adminUrl).hostname, port: new URL(adminUrl).port, path };
  return new Promise((resolve, reject) => {
    const headers = { ...(target.headers as Record<string, string> | undefined), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
    const req = http.request({ ...target, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
