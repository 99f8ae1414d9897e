// A real Docker-compatible API for tests: `podman system service` on a unix socket in a temp dir.
// Settings that work on these machines (MACHINE-NOTES.md): runc, cgroupfs, file events, explicit ulimits.
import { spawn, spawnSync, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface TestPodman {
  socketPath: string;
  /** Environment for podman CLI calls that must see the same configuration. */
  env: NodeJS.ProcessEnv;
  /** Run the podman CLI with this configuration; resolves to stdout. */
  cli(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

const CONTAINERS_CONF = `[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`;

export async function startPodman(): Promise<TestPodman> {
  // Fail loudly: a missing podman must never turn into silently skipped driver tests.
  const probe = spawnSync('podman', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error('podman not found: apt-get install -y podman runc');
  }
  const dir = mkdtempSync(join(tmpdir(), 'fleet-podman-'));
  const confPath = join(dir, 'containers.conf');
  writeFileSync(confPath, CONTAINERS_CONF);
  const env = { ...process.env, CONTAINERS_CONF: confPath };
  const socketPath = join(dir, 'podman.sock');
  let output = '';
  const child = spawn('podman', ['system', 'service', '--time=0', `unix://${socketPath}`], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (b) => (output += b));
  child.stderr?.on('data', (b) => (output += b));
  try {
    await waitForPing(socketPath, child, () => output);
  } catch (err) {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    socketPath,
    env,
    async cli(args) {
      const { stdout } = await execFileP('podman', args, { env, maxBuffer: 16 * 1024 * 1024 });
      return stdout;
    },
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPing(socketPath: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`podman system service exited (${child.exitCode}): ${output()}`);
    if (await ping(socketPath)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`podman system service did not answer /_ping on ${socketPath} within 20 s: ${output()}`);
}

export function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
